from rest_framework import serializers

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
