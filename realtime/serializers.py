from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.serializers import MeSerializer as ProfileSerializer
from realtime.selectors import presence_get

# Events staff may push: never a name the contract uses for something else.
NOTIFY_EVENTS = ("notification", "announcement", "system-alert")
BROADCAST_EVENTS = ("broadcast", "announcement", "system-alert")


class NotifySerializer(serializers.Serializer):
    userId = serializers.CharField(max_length=20)
    event = serializers.ChoiceField(choices=NOTIFY_EVENTS, default="notification")
    data = serializers.JSONField()


class BroadcastSerializer(serializers.Serializer):
    event = serializers.ChoiceField(choices=BROADCAST_EVENTS, default="broadcast")
    data = serializers.JSONField()


class PresenceSerializer(serializers.Serializer):
    status = serializers.CharField()
    online = serializers.BooleanField()
    lastSeen = serializers.DateTimeField(allow_null=True)


class MeSerializer(ProfileSerializer):
    """The caller's profile with their presence across the cluster."""

    presence = serializers.SerializerMethodField()

    class Meta(ProfileSerializer.Meta):
        fields = [*ProfileSerializer.Meta.fields, "presence"]
        read_only_fields = fields

    @extend_schema_field(PresenceSerializer)
    def get_presence(self, user) -> dict:
        return presence_get(user_id=user.pk)
