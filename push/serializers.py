"""Shapes of the push REST API (the services validate; these document and render)."""

from rest_framework import serializers

from bamchat.formats import iso
from push.models import PushSubscription


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
