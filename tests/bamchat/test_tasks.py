"""The shared task queue: periodic jobs are enqueued once per period."""

import pytest
from django.core.cache import cache
from django_tasks_db.models import DBTaskResult

from bamchat.tasks import enqueue_due_periodic
from push.tasks import push_prune


@pytest.mark.django_db
def test_a_periodic_job_is_enqueued_once_per_period():
    cache.clear()
    assert push_prune.module_path in enqueue_due_periodic()
    assert push_prune.module_path not in enqueue_due_periodic()
    queued = DBTaskResult.objects.filter(task_path=push_prune.module_path)
    assert queued.count() == 1
    cache.clear()  # the period is over
    assert push_prune.module_path in enqueue_due_periodic()
