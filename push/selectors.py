"""Reads on push subscriptions and deliveries."""

from django.db.models import Count, Q, QuerySet, Sum

from push.models import PushDelivery, PushSubscription


def subscription_list(*, user) -> QuerySet[PushSubscription]:
    """The user's own subscriptions, newest first."""
    return PushSubscription.objects.filter(user=user).order_by("-created_at", "-id")


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
