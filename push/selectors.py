"""Reads on push subscriptions and deliveries."""

from django.db.models import CharField, Count, F, Q, QuerySet, Sum, Value

from messaging.models import Message
from messaging.selectors import unread_filter
from push.models import Platform, PushDelivery, PushDevice, PushSubscription


def subscription_list(*, user) -> QuerySet[PushSubscription]:
    """The user's own subscriptions, newest first."""
    return PushSubscription.objects.filter(user=user).order_by("-created_at", "-id")


def device_list(*, user) -> QuerySet[PushDevice]:
    """The user's own app devices, newest first."""
    return PushDevice.objects.filter(user=user).order_by("-created_at", "-id")


def unread_total(*, user_id: int) -> int:
    """The user's unread messages across all their BAMs (muted ones too): the
    badge of an app's icon."""
    return Message.objects.filter(
        unread_filter(user_id=user_id, after_seq=F("bam__memberships__last_read_seq")),
        bam__memberships__user_id=user_id,
    ).count()


def delivery_figures() -> dict:
    """Push deliveries so far: sent, failed (incl. gone), retried (retries made),
    pending (waiting or being sent)."""
    State = PushDelivery.State
    row = PushDelivery.objects.aggregate(
        sent=Count("id", filter=Q(state=State.SENT)),
        failed=Count("id", filter=Q(state__in=[State.FAILED, State.GONE])),
        pending=Count("id", filter=Q(state__in=[State.PENDING, State.SENDING])),
        retried=Sum("retries"),
    )
    return {key: row[key] or 0 for key in ("sent", "failed", "retried", "pending")}


def device_figures() -> dict:
    """Registered push devices by platform: browsers' Web Push subscriptions and
    apps' FCM and APNs devices, in one query."""
    web = (
        PushSubscription.objects.annotate(
            platform=Value(Platform.WEB.value, output_field=CharField())
        )
        .values("platform")
        .annotate(count=Count("id"))
        .order_by()
    )
    apps = PushDevice.objects.values("platform").annotate(count=Count("id")).order_by()
    counts = dict(web.union(apps, all=True).values_list("platform", "count"))
    return {platform: counts.get(platform, 0) for platform in Platform.values}
