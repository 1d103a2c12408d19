"""Shapes of the Socket.IO payloads this app builds: room and presence events,
the handshake, and every event's ack. They document the dicts the handlers
build; ``realtime.contract`` publishes them (with the messaging shapes) in the
AsyncAPI document and as OpenAPI components."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from messaging.event_serializers import (
    MessageEditSerializer,
    ReactionAddSerializer,
    ReadMarkSerializer,
    ReadResultSerializer,
)
from messaging.serializers import (
    MessageCreateSerializer,
    MessageSerializer,
    ReactionSummarySerializer,
)
from realtime.models import Presence

ERROR_CODES = ["invalid", "not_found", "forbidden", "rate_limited", "too_large"]
CONNECT_ERROR_CODES = ["auth_required", "auth_invalid", "token_expired"]


@extend_schema_field({"type": "boolean", "enum": [True]})
class OkField(serializers.BooleanField):
    """``ok: true`` of an accepted event's ack."""


@extend_schema_field({"type": "boolean", "enum": [False]})
class NotOkField(serializers.BooleanField):
    """``ok: false`` of a refused event's ack."""


class MemberEventSerializer(serializers.Serializer):
    """``user-joined-bam`` / ``user-left-bam``."""

    bamId = serializers.CharField()
    userId = serializers.CharField()
    username = serializers.CharField()
    at = serializers.DateTimeField()


class TypingStatusSerializer(serializers.Serializer):
    bamId = serializers.CharField()
    userId = serializers.CharField()
    username = serializers.CharField()
    isTyping = serializers.BooleanField()


class PresenceUpdateSerializer(serializers.Serializer):
    userId = serializers.CharField()
    status = serializers.ChoiceField(choices=Presence.Status.choices)
    lastSeen = serializers.DateTimeField(allow_null=True)


class TokenExpiredSerializer(serializers.Serializer):
    """``token-expired``, just before the server disconnects the socket."""

    code = serializers.ChoiceField(choices=["token_expired"])
    message = serializers.CharField()


class HandshakeAuthSerializer(serializers.Serializer):
    """The handshake's ``auth`` object (``io(url, {auth: {token}})``); the token
    may instead come as ``Authorization: Bearer`` or ``?token=``."""

    token = serializers.CharField(help_text="An access JWT from POST /auth/token.")


class ConnectErrorDataSerializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=[*CONNECT_ERROR_CODES, *ERROR_CODES])


class ConnectErrorSerializer(serializers.Serializer):
    """What a refused handshake's ``connect_error`` carries."""

    message = serializers.CharField()
    data = ConnectErrorDataSerializer()


class AckErrorDetailSerializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=[*ERROR_CODES, "internal"])
    message = serializers.CharField()
    retryAfter = serializers.FloatField(
        required=False, help_text="Seconds to wait (rate_limited)."
    )
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Messages per invalid field.",
    )


class AckErrorSerializer(serializers.Serializer):
    """The ack of a refused event."""

    ok = NotOkField()
    error = AckErrorDetailSerializer()


class AckSerializer(serializers.Serializer):
    """The ack of an accepted event that answers nothing more."""

    ok = OkField()


class JoinBamAckSerializer(AckSerializer):
    """The ack of ``join-bam``: who is in the room, what was replayed."""

    bamId = serializers.CharField()
    onlineUsers = serializers.ListField(child=serializers.CharField(), required=False)
    missed = serializers.IntegerField(
        required=False, help_text="Events replayed before this ack."
    )
    lastSeq = serializers.IntegerField(required=False)
    truncated = serializers.BooleanField(
        required=False, help_text="The replay stopped at its cap; read on over REST."
    )


class LeaveBamAckSerializer(AckSerializer):
    """The ack of ``leave-bam``."""

    bamId = serializers.CharField()


class MessageAckSerializer(AckSerializer):
    """The ack of ``send-message`` and ``edit-message``."""

    message = MessageSerializer()


class DeleteMessageAckSerializer(AckSerializer):
    """The ack of ``delete-message``."""

    messageId = serializers.CharField()


class ReactAckSerializer(AckSerializer):
    """The ack of ``react``: the message's reactions now."""

    reactions = ReactionSummarySerializer(many=True)


class MarkReadAckSerializer(AckSerializer, ReadResultSerializer):
    """The ack of ``mark-read``: what ``POST /bams/{id}/read`` answers."""


class StatusChangeAckSerializer(AckSerializer):
    """The ack of ``status-change``: the status now."""

    status = serializers.ChoiceField(choices=Presence.Status.live())


# -- what clients send ------------------------------------------------------------
class BamRefSerializer(serializers.Serializer):
    bamId = serializers.CharField()


class JoinBamSerializer(BamRefSerializer):
    since = serializers.CharField(
        required=False, help_text="Replay the BAM's events after this message id."
    )
    sinceSeq = serializers.IntegerField(
        required=False, min_value=0, help_text="Replay the events after this seq."
    )


class SendMessageSerializer(MessageCreateSerializer):
    """``send-message``: the body of ``POST /bams/{id}/messages`` and the BAM."""

    bamId = serializers.CharField()


class EditMessageSerializer(MessageEditSerializer):
    """``edit-message``: the body of ``PATCH /bams/{id}/messages/{id}`` and the
    message."""

    messageId = serializers.CharField()


class MessageRefSerializer(serializers.Serializer):
    messageId = serializers.CharField()


class ReactSerializer(ReactionAddSerializer):
    """``react``: the emoji, the message, and whether the reaction goes on."""

    messageId = serializers.CharField()
    on = serializers.BooleanField(required=False, default=True)


class MarkReadSerializer(ReadMarkSerializer):
    """``mark-read``: the body of ``POST /bams/{id}/read`` and the BAM."""

    bamId = serializers.CharField()


class StatusChoiceSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Presence.Status.live())
