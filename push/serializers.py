"""Shapes of the push REST API (the services validate; these document and render)."""

from rest_framework import serializers

from bamchat.formats import iso
from push.models import PushDevice, PushSubscription


class VapidKeySerializer(serializers.Serializer):
    publicKey = serializers.CharField()


class SubscriptionKeysSerializer(serializers.Serializer):
    p256dh = serializers.CharField()
    auth = serializers.CharField()


class SubscriptionCreateSerializer(serializers.Serializer):
    """A browser's ``PushSubscription.toJSON()``."""

    endpoint = serializers.URLField()
    expirationTime = serializers.IntegerField(required=False, allow_null=True)
    keys = SubscriptionKeysSerializer()


class SubscriptionSerializer(serializers.ModelSerializer):
    id = serializers.CharField(read_only=True)
    createdAt = serializers.SerializerMethodField()
    expirationTime = serializers.SerializerMethodField()

    class Meta:
        model = PushSubscription
        fields = ["id", "endpoint", "createdAt", "expirationTime"]

    def get_createdAt(self, obj) -> str:
        return iso(obj.created_at)

    def get_expirationTime(self, obj) -> int | None:
        if obj.expiration is None:
            return None
        return int(obj.expiration.timestamp() * 1000)


class MembershipMuteSerializer(serializers.Serializer):
    muted = serializers.BooleanField()


class MembershipStateSerializer(serializers.Serializer):
    bamId = serializers.CharField()
    userId = serializers.CharField()
    muted = serializers.BooleanField()


class DeviceCreateSerializer(serializers.Serializer):
    """A native app's device token: FCM registration token or APNs device token."""

    platform = serializers.ChoiceField(choices=["fcm", "apns"])
    token = serializers.CharField()
    appId = serializers.CharField(required=False, allow_null=True)
    locale = serializers.CharField(required=False, allow_null=True)


class DeviceSerializer(serializers.ModelSerializer):
    id = serializers.CharField(read_only=True)
    appId = serializers.CharField(source="app_id", read_only=True)
    createdAt = serializers.SerializerMethodField()

    class Meta:
        model = PushDevice
        fields = ["id", "platform", "token", "appId", "locale", "createdAt"]

    def get_createdAt(self, obj) -> str:
        return iso(obj.created_at)
