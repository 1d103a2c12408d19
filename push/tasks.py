"""Push work for the task queue (``bamchat.tasks``): plan a message's pushes, send
one, send a test; and the periodic clean-up of old delivery records.

Each may run again after a transient database error (``bamchat.tasks.task``); a
second run never pushes twice to a device: see each task's docstring.
"""

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from bamchat.tasks import periodic, task
from push import services
from push.models import PushDelivery, PushDevice, PushSubscription

logger = logging.getLogger(__name__)

# Delivery records (the dashboard's figures) are kept this long.
DELIVERY_KEEP_DAYS = 30


@task()
def push_fanout(message_id: int, user_ids: list[int] | None = None) -> int:
    """Create a message's deliveries (only for ``user_ids``, newly mentioned by
    an edit, when given) and enqueue one send per device.

    Safe to run again: planning and enqueueing are one transaction, and a second
    plan creates no delivery twice (unique per device and message) and enqueues
    only deliveries never tried; a send enqueued twice is claimed once.
    """
    # One transaction: the deliveries and their send tasks exist together or not.
    with transaction.atomic():
        planned = services.deliveries_plan(message_id=message_id, user_ids=user_ids)
        for delivery_id in planned:
            push_send.enqueue(delivery_id)
    return len(planned)


def _retry(delivery_id: int, when) -> None:
    push_send.using(run_after=when).enqueue(delivery_id)


@task()
def push_send(delivery_id: int) -> str:
    """Send one delivery (at most once), retrying later on 429, 5xx or no answer.

    Safe to run again: the delivery is claimed with one conditional UPDATE (pending
    and due → sending) before anything is sent, so a run after a failure before the
    claim sends it, and one after the claim finds it taken and does nothing (a run
    that failed past the claim leaves it ``sending``, as a worker that dies does).
    """
    return services.delivery_send(delivery_id=delivery_id, retry=_retry)


@task()
def push_test(subscription_id: int) -> int | None:
    """Send a test notification to one browser (the admin's action); its HTTP status.

    A run again after a failure past the send shows the device a second test
    notification, which is harmless.
    """
    subscription = PushSubscription.objects.filter(pk=subscription_id).first()
    if subscription is None:
        return None
    outcome = services.target_send(
        target=subscription, notification=services.test_notification()
    )
    logger.info(
        "Test push to subscription %s: HTTP %s", subscription_id, outcome.status
    )
    return outcome.status


@task()
def push_device_test(device_id: int) -> str | None:
    """Send a test notification to one app device (the admin's action); the result
    (sent, retry, gone, failed). A repeated run shows a second test, harmlessly."""
    device = PushDevice.objects.filter(pk=device_id).first()
    if device is None:
        return None
    outcome = services.target_send(
        target=device, notification=services.test_notification()
    )
    logger.info(
        "Test push to %s device %s: %s (HTTP %s%s)",
        device.platform,
        device_id,
        outcome.result,
        outcome.status,
        f", {outcome.error}" if outcome.error else "",
    )
    return str(outcome.result)


@periodic(every_s=3600)
@task()
def push_prune() -> int:
    """Delete finished delivery records older than the keep period, and expired
    subscriptions."""
    now = timezone.now()
    deleted, _ = PushDelivery.objects.filter(
        created_at__lt=now - timedelta(days=DELIVERY_KEEP_DAYS),
        state__in=[
            PushDelivery.State.SENT,
            PushDelivery.State.FAILED,
            PushDelivery.State.GONE,
        ],
    ).delete()
    PushSubscription.objects.filter(expiration__lt=now).delete()
    return deleted
