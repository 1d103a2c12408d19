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


class UserPresenceSerializer(PresenceSerializer):
    """GET /websocket/presence/{userId}."""

    userId = serializers.CharField()


class BamOnlineSerializer(serializers.Serializer):
    bamId = serializers.CharField()
    onlineUsers = serializers.ListField(child=serializers.CharField())


class NotifyResultSerializer(serializers.Serializer):
    userId = serializers.CharField()
    event = serializers.CharField()
    online = serializers.BooleanField()
    sockets = serializers.IntegerField()
    sent = serializers.BooleanField()


class BroadcastResultSerializer(serializers.Serializer):
    event = serializers.CharField()
    sent = serializers.BooleanField()
    connections = serializers.IntegerField()
    connectedUsers = serializers.IntegerField()


class RoomStatsSerializer(serializers.Serializer):
    sockets = serializers.IntegerField()
    users = serializers.IntegerField()
    members = serializers.ListField(child=serializers.CharField())


class ProcessStatsSerializer(serializers.Serializer):
    id = serializers.CharField()
    host = serializers.CharField()
    pid = serializers.IntegerField()
    startedAt = serializers.DateTimeField()
    lastHeartbeat = serializers.DateTimeField()
    connections = serializers.IntegerField()


class StatsSerializer(serializers.Serializer):
    """Connections, users, statuses, rooms (``bam-{id}``) and processes."""

    connections = serializers.IntegerField()
    connectedUsers = serializers.IntegerField()
    byStatus = serializers.DictField(child=serializers.IntegerField())
    rooms = serializers.DictField(child=RoomStatsSerializer())
    processes = ProcessStatsSerializer(many=True)
    messagesLastMinute = serializers.IntegerField()
    messagesLastHour = serializers.IntegerField()
    at = serializers.DateTimeField()


class HealthSerializer(serializers.Serializer):
    """``ok`` for anyone; the details only for staff."""

    ok = serializers.BooleanField()
    database = serializers.BooleanField(required=False)
    process = serializers.CharField(required=False)
    heartbeat = serializers.BooleanField(required=False)
    stopping = serializers.BooleanField(required=False)
    heartbeatError = serializers.CharField(required=False, allow_null=True)
    listener = serializers.BooleanField(required=False)
    listenerRestarts = serializers.IntegerField(required=False)
    layerDown = serializers.BooleanField(required=False)
    sockets = serializers.IntegerField(required=False)
