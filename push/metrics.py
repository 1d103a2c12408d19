"""Push figures for ``GET /metrics``: failed sends, and the queue read at scrape time.

The queue is the task rows of the database backend (``django_tasks_db``) shared by
every process, so each process reports the same cluster-wide depth.
"""

import logging

from django.db.models import Count, Q
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult, get_date_max
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger(__name__)

PUSH_TASK_PREFIX = "push.tasks."

PUSH_FAILURES = Counter(
    "bamchat_push_failures",
    "Pushes this process's task worker gave up on, by reason: refused (an "
    "error status), gone (404/410, subscription deleted), expired (retries "
    "outlived the TTL), error (not sent: an exception), not_allowed (not sent: "
    "the stored endpoint fails PUSH_ALLOWED_HOSTS now), credentials (FCM or APNs "
    "credentials missing or refused).",
    ["reason"],
)
FAILURE_REASONS = ("refused", "gone", "expired", "error", "not_allowed", "credentials")
failures = {reason: PUSH_FAILURES.labels(reason) for reason in FAILURE_REASONS}

PUSH_SENDS = Counter(
    "bamchat_push_sends",
    "Push requests this process's task worker made, by platform (web, fcm, apns) "
    "and result (sent, retry, gone, failed).",
    ["platform", "result"],
)


def outcomes(platform: str, result: str) -> Counter:
    """The send counter of one platform and result."""
    return PUSH_SENDS.labels(platform, str(result))


PUSH_DEVICES_REPLACED = Counter(
    "bamchat_push_devices_replaced",
    "Push devices removed because their user registered more than "
    "PUSH_MAX_DEVICES_PER_USER (the least recently registered go first).",
)


class PushQueueCollector:
    """Push tasks waiting in the queue, counted with one query per scrape."""

    def describe(self):
        return [self._family()]

    def collect(self):
        now = timezone.now()
        try:
            # A task without run_after is stored with the largest date: due now.
            row = DBTaskResult.objects.filter(
                status=TaskResultStatus.READY, task_path__startswith=PUSH_TASK_PREFIX
            ).aggregate(
                waiting=Count("id"),
                due=Count(
                    "id", filter=Q(run_after__lte=now) | Q(run_after=get_date_max())
                ),
            )
        except Exception:
            logger.warning("Push queue depth unavailable", exc_info=True)
            return []
        family = self._family()
        family.add_metric(["due"], row["due"])
        family.add_metric(["scheduled"], row["waiting"] - row["due"])
        return [family]

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "bamchat_push_queue_tasks",
            "Push tasks waiting in the task queue (cluster-wide): due now, or "
            "scheduled later (retries after a back-off).",
            labels=["state"],
        )
