from django.conf import settings
from django.db import models
from django.utils import timezone

ENDPOINT_MAX_CHARS = 2000
KEY_MAX_CHARS = 200
# An FCM registration token is ~160 characters, an APNs device token 64 hex
# digits; neither service documents a maximum, so this leaves room.
DEVICE_TOKEN_MAX_CHARS = 4096
APP_ID_MAX_CHARS = 255  # an Android package name or an iOS bundle id
LOCALE_MAX_CHARS = 35  # a BCP 47 language tag


class Platform(models.TextChoices):
    """Where a push goes: a browser's push service, or a native app's."""

    WEB = "web", "Web Push"
    FCM = "fcm", "Firebase Cloud Messaging"
    APNS = "apns", "Apple Push Notification service"


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


class PushDevice(models.Model):
    """One native app install's device token (FCM registration token or APNs device
    token): the same (platform, token) is the same device, whoever registers it."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="push_devices",
    )
    platform = models.CharField(
        max_length=10, choices=[c for c in Platform.choices if c[0] != "web"]
    )
    token = models.CharField(max_length=DEVICE_TOKEN_MAX_CHARS)
    app_id = models.CharField(max_length=APP_ID_MAX_CHARS, blank=True)
    locale = models.CharField(max_length=LOCALE_MAX_CHARS, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["user", "created_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["platform", "token"], name="push_device_unique_platform_token"
            )
        ]

    def __str__(self) -> str:
        return f"#{self.pk} of {self.user_id}: {self.platform} {self.token[:12]}…"


class PushDelivery(models.Model):
    """One push of one message to one device: sent at most once, whoever races."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"  # waiting for a worker (first try or retry)
        SENDING = "sending", "Sending"  # claimed by one worker
        SENT = "sent", "Sent"  # accepted by the push service
        FAILED = "failed", "Failed"  # refused, or retries outlived the TTL
        GONE = "gone", "Gone"  # the service says the device is gone: deleted

    # SET_NULL keeps the record (and the figures) when a subscription goes.
    subscription = models.ForeignKey(
        PushSubscription,
        on_delete=models.SET_NULL,
        null=True,
        related_name="deliveries",
    )
    device = models.ForeignKey(
        PushDevice,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="deliveries",
    )
    # Kept with the record, so the figures by platform outlive the device.
    platform = models.CharField(
        max_length=10, choices=Platform.choices, default=Platform.WEB, db_index=True
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
            ),
            models.UniqueConstraint(
                fields=["device", "message"],
                name="push_delivery_unique_device_message",
            ),
        ]

    def __str__(self) -> str:
        target = self.subscription_id or self.device_id
        return f"message {self.message_id} to {self.platform} #{target}: {self.state}"


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
