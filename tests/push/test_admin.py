"""Push in the admin, in process: devices per user with a test push, and delivery
figures on the realtime dashboard."""

import pytest
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from messaging.models import Message
from push.models import PushDelivery, PushSubscription
from push.tasks import push_test
from tests.factories import BamFactory, UserFactory
from tests.push.test_services import KEYS

pytestmark = pytest.mark.django_db


@pytest.fixture
def deliveries():
    alice, bob = UserFactory(), UserFactory()
    bam = BamFactory(owner=alice, members=[bob])
    subscriptions = [
        PushSubscription.objects.create(
            user=bob, endpoint=f"https://fcm.googleapis.com/fcm/send/{n}", **KEYS
        )
        for n in range(2)
    ]
    State = PushDelivery.State
    for n, (state, retries) in enumerate(
        [(State.SENT, 0), (State.SENT, 2), (State.GONE, 0), (State.PENDING, 1)]
    ):
        message = Message.objects.create(bam=bam, sender=alice, content="x", seq=n + 1)
        PushDelivery.objects.create(
            subscription=subscriptions[n % 2],
            message=message,
            state=state,
            retries=retries,
        )
    return subscriptions


def test_dashboard_shows_push_delivery_figures(admin_client, deliveries):
    data = admin_client.get(reverse("admin:realtime_dashboard_data")).json()
    assert data["push"] == {"sent": 2, "failed": 1, "retried": 3, "pending": 1}
    page = admin_client.get(reverse("admin:realtime_dashboard")).content.decode()
    assert 'id="rt-push-sent">2<' in page and 'id="rt-push-pending">1<' in page


def test_send_test_push_action_queues_one_push_per_device(admin_client, deliveries):
    changelist = reverse("admin:push_pushsubscription_changelist")
    page = admin_client.get(changelist, {"q": deliveries[0].user.username})
    assert page.status_code == 200 and deliveries[0].endpoint in page.content.decode()
    response = admin_client.post(
        changelist,
        {
            "action": "send_test_push",
            "_selected_action": [str(s.pk) for s in deliveries],
        },
        follow=True,
    )
    assert "Queued a test push to 2 devices" in response.content.decode()
    queued = DBTaskResult.objects.filter(task_path=push_test.module_path)
    assert sorted(r.args_kwargs["args"][0] for r in queued) == sorted(
        s.pk for s in deliveries
    )
    assert (
        admin_client.get(reverse("admin:push_pushdelivery_changelist")).status_code
        == 200
    )
