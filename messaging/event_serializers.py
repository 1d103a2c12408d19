"""Shapes of what a BAM's changes announce and what lifecycle writes take and
answer.

Each serializer documents a payload built elsewhere (``message_event_payload``,
``lifecycle.read_mark``, the realtime receivers); the OpenAPI and AsyncAPI
documents are generated from them.
"""

from rest_framework import serializers

from messaging.models import CONTENT_MAX_CHARS
from messaging.serializers import ReactionSummarySerializer


class MessageUpdatedSerializer(serializers.Serializer):
    """``message-updated``: a message's new text."""

    id = serializers.CharField()
    bamId = serializers.CharField()
    seq = serializers.IntegerField()
    content = serializers.CharField(allow_null=True)
    text = serializers.CharField(allow_null=True, help_text="Mirrors content.")
    editedAt = serializers.DateTimeField(allow_null=True)


class MessageDeletedSerializer(serializers.Serializer):
    """``message-deleted``: a message became a tombstone."""

    id = serializers.CharField()
    bamId = serializers.CharField()
    seq = serializers.IntegerField()
    deletedAt = serializers.DateTimeField()


class ReactionUpdatedSerializer(serializers.Serializer):
    """``reaction-updated``: one user's reaction went on or off."""

    messageId = serializers.CharField()
    bamId = serializers.CharField()
    seq = serializers.IntegerField()
    emoji = serializers.CharField()
    userId = serializers.CharField()
    on = serializers.BooleanField()
    count = serializers.IntegerField(help_text="Reactions with this emoji now.")


class ReadReceiptSerializer(serializers.Serializer):
    """``read-receipt``: a participant's read position moved forward."""

    bamId = serializers.CharField()
    userId = serializers.CharField()
    messageId = serializers.CharField()
    at = serializers.DateTimeField()


class ReadResultSerializer(serializers.Serializer):
    """What a mark-read answers (REST body and Socket.IO ack extras)."""

    bamId = serializers.CharField()
    messageId = serializers.CharField(allow_null=True)
    unreadCount = serializers.IntegerField()


class ReactionsResultSerializer(serializers.Serializer):
    """A message's reactions after the caller's change (REST)."""

    messageId = serializers.CharField()
    reactions = ReactionSummarySerializer(many=True)


class NotificationSerializer(serializers.Serializer):
    """``notification`` of a new message or a mention, for a participant's
    sockets outside the BAM's room (staff ``notify`` may carry anything)."""

    type = serializers.ChoiceField(choices=["new-message", "mention"])
    bamId = serializers.CharField()
    messageId = serializers.CharField()
    senderId = serializers.CharField()
    preview = serializers.CharField(
        required=False, help_text="First 100 characters (new messages only)."
    )


# -- what lifecycle writes take (REST bodies; the Socket.IO events add the ids) --
class MessageEditSerializer(serializers.Serializer):
    """A message's new text: ``content``, or ``text``."""

    content = serializers.CharField(
        required=False, max_length=CONTENT_MAX_CHARS, help_text="Or ``text``."
    )
    text = serializers.CharField(required=False, max_length=CONTENT_MAX_CHARS)


class ReactionAddSerializer(serializers.Serializer):
    emoji = serializers.CharField(
        help_text="One emoji, or a :shortcode: of [a-z0-9_+-]{1,32}."
    )


class ReadMarkSerializer(serializers.Serializer):
    messageId = serializers.CharField(help_text="The newest message read.")
