from django.conf import settings
from django.db import models
from django.utils import timezone

ENDPOINT_MAX_CHARS = 2000
KEY_MAX_CHARS = 200


class PushSubscription(models.Model):
    """One device's Web Push subscription (a browser's ``PushSubscription``)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="push_subscriptions",
    )
    endpoint = models.URLField(max_length=ENDPOINT_MAX_CHARS, unique=True)
    p256dh = models.CharField(max_length=KEY_MAX_CHARS)
    auth = models.CharField(max_length=KEY_MAX_CHARS)
    expiration = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["user", "created_at"])]

    def __str__(self) -> str:
        return f"#{self.pk} of {self.user_id} at {self.endpoint[:60]}"


class PushDelivery(models.Model):
    """One push of one message to one device: sent at most once, whoever races."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"  # waiting for a worker (first try or retry)
        SENDING = "sending", "Sending"  # claimed by one worker
        SENT = "sent", "Sent"  # accepted by the push service
        FAILED = "failed", "Failed"  # refused, or retries outlived the TTL
        GONE = "gone", "Gone"  # 404/410: the subscription was deleted

    # SET_NULL keeps the record (and the figures) when a subscription goes.
    subscription = models.ForeignKey(
        PushSubscription,
        on_delete=models.SET_NULL,
        null=True,
        related_name="deliveries",
    )
    message = models.ForeignKey(
        "messaging.Message", on_delete=models.CASCADE, related_name="push_deliveries"
    )
    state = models.CharField(
        max_length=10, choices=State.choices, default=State.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    retries = models.PositiveIntegerField(default=0)
    last_status = models.PositiveIntegerField(null=True, blank=True)
    # No worker may claim the delivery before this (a retry honours Retry-After).
    next_attempt_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "push deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "message"],
                name="push_delivery_unique_subscription_message",
            )
        ]

    def __str__(self) -> str:
        return f"message {self.message_id} to #{self.subscription_id}: {self.state}"


class VapidKey(models.Model):
    """The generated VAPID key pair, kept when ``PUSH_VAPID_PRIVATE_KEY`` is unset."""

    # One row, id 1: every process reads (or first creates) the same key.
    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    private_pem = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "VAPID key"

    def __str__(self) -> str:
        return f"VAPID key created {self.created_at:%Y-%m-%d}"
