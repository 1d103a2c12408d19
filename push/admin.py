"""Admin for push: devices per user (with a test push) and delivery records."""

from urllib.parse import urlsplit

from django.contrib import admin, messages

from push.models import PushDelivery, PushDevice, PushSubscription
from push.tasks import push_device_test, push_test
from realtime.admin import ReadOnlyAdmin


@admin.register(PushSubscription)
class PushSubscriptionAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "service", "created_at", "expiration"]
    list_select_related = ["user"]
    list_filter = ["created_at"]
    search_fields = ["user__username", "endpoint"]
    ordering = ["user__username", "-created_at"]
    readonly_fields = ["user", "endpoint", "p256dh", "auth", "created_at", "updated_at"]
    actions = ["send_test_push"]

    def has_add_permission(self, request) -> bool:
        return False  # devices subscribe themselves over REST

    @admin.display(description="push service")
    def service(self, obj: PushSubscription) -> str:
        return urlsplit(obj.endpoint).netloc

    @admin.action(description="Send a test push to the selected devices")
    def send_test_push(self, request, queryset) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        for subscription_id in ids:
            push_test.enqueue(subscription_id)
        self.message_user(
            request,
            f"Queued a test push to {len(ids)} device{'s' if len(ids) != 1 else ''}.",
            messages.SUCCESS,
        )


@admin.register(PushDevice)
class PushDeviceAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "platform", "app_id", "locale", "created_at"]
    list_select_related = ["user"]
    list_filter = ["platform", "created_at"]
    search_fields = ["user__username", "token", "app_id"]
    ordering = ["user__username", "-created_at"]
    readonly_fields = [
        "user",
        "platform",
        "token",
        "app_id",
        "locale",
        "created_at",
        "updated_at",
    ]
    actions = ["send_test_push"]

    def has_add_permission(self, request) -> bool:
        return False  # apps register their devices over REST

    @admin.action(description="Send a test push to the selected devices")
    def send_test_push(self, request, queryset) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        for device_id in ids:
            push_device_test.enqueue(device_id)
        self.message_user(
            request,
            f"Queued a test push to {len(ids)} device{'s' if len(ids) != 1 else ''}.",
            messages.SUCCESS,
        )


@admin.register(PushDelivery)
class PushDeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "message",
        "platform",
        "subscription",
        "device",
        "state",
        "attempts",
        "retries",
        "last_status",
        "updated_at",
    ]
    list_filter = ["state", "platform"]
    search_fields = ["subscription__user__username", "device__user__username"]
    raw_id_fields = ["message", "subscription", "device"]
