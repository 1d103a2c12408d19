"""Shapes of BAMs and messages. ``message_payload`` is the one shape of a message,
for REST responses and the Socket.IO ``new-message`` event alike."""

from rest_framework import serializers

from accounts.serializers import UserSummarySerializer
from bamchat.formats import iso
from messaging.attachments import attachment_payload
from messaging.models import (
    CONTENT_MAX_CHARS,
    TEMP_ID_MAX_CHARS,
    TITLE_MAX_CHARS,
    Bam,
    Membership,
    Message,
    MessageEvent,
)

ATTACHMENT_PREVIEW = "📎 attachment"


class ReplyToSerializer(serializers.Serializer):
    """The message answered, as ``reply_payload`` shapes it."""

    id = serializers.CharField()
    senderId = serializers.CharField()
    preview = serializers.CharField(
        allow_null=True, help_text="First 100 characters; null once deleted."
    )
    deleted = serializers.BooleanField()


class AttachmentSerializer(serializers.Serializer):
    """An upload as clients see it (documents ``attachment_payload``)."""

    id = serializers.CharField()
    bamId = serializers.CharField()
    name = serializers.CharField()
    size = serializers.IntegerField()
    contentType = serializers.CharField()
    kind = serializers.ChoiceField(choices=["image", "file"])
    width = serializers.IntegerField(allow_null=True)
    height = serializers.IntegerField(allow_null=True)
    url = serializers.CharField(help_text="Signed, expiring download URL.")
    thumbnailUrl = serializers.CharField(allow_null=True)

    def to_representation(self, instance):
        return attachment_payload(instance)


class ReactionSummarySerializer(serializers.Serializer):
    """One emoji's reactions to a message, as ``reactions_summary`` shapes them."""

    emoji = serializers.CharField()
    count = serializers.IntegerField()
    userIds = serializers.ListField(
        child=serializers.CharField(),
        help_text="Ids of the first 20 users who reacted with this emoji.",
    )


class MessageSerializer(serializers.Serializer):
    """A message as clients see it: REST bodies and the ``new-message`` payload.

    The fields document ``message_payload``, which builds the shape; the tests
    check every payload a live server sends against the schema made from them.
    """

    id = serializers.CharField()
    bamId = serializers.CharField()
    seq = serializers.IntegerField(help_text="The BAM's event sequence number.")
    senderId = serializers.CharField()
    sender = UserSummarySerializer()
    toUserId = serializers.CharField(allow_null=True)
    # A deleted message is a tombstone: content and text are null.
    content = serializers.CharField(allow_null=True)
    text = serializers.CharField(allow_null=True, help_text="Mirrors content.")
    type = serializers.ChoiceField(choices=Message.Type.choices)
    tempId = serializers.CharField(allow_null=True)
    createdAt = serializers.DateTimeField()
    editedAt = serializers.DateTimeField(allow_null=True)
    deleted = serializers.BooleanField()
    attachments = AttachmentSerializer(many=True)
    reactions = ReactionSummarySerializer(many=True)
    replyTo = ReplyToSerializer(allow_null=True)
    mentions = serializers.ListField(
        child=serializers.CharField(),
        help_text="Ids of the participants the text names (@username, @all).",
    )

    def to_representation(self, instance):
        return message_payload(instance)


# A message payload lists at most this many reacting users per emoji.
REACTION_USERS_SHOWN = 20


def reactions_summary(reactions) -> list[dict]:
    """``[{emoji, count, userIds}]`` of a message's reactions, by first use."""
    by_emoji: dict[str, dict] = {}
    for reaction in sorted(reactions, key=lambda r: (r.created_at, r.pk)):
        entry = by_emoji.setdefault(
            reaction.emoji, {"emoji": reaction.emoji, "count": 0, "userIds": []}
        )
        entry["count"] += 1
        if len(entry["userIds"]) < REACTION_USERS_SHOWN:
            entry["userIds"].append(str(reaction.user_id))
    return list(by_emoji.values())


def _prefetched_reactions(message: Message) -> list:
    cache = getattr(message, "_prefetched_objects_cache", {})
    if "reactions" in cache:
        return list(cache["reactions"])
    if getattr(message, "created", False):
        return []  # just stored: nothing to look up
    return list(message.reactions.all())


def message_payload(message: Message) -> dict:
    """The plain-data payload of a message (ids as strings, ISO UTC time).

    Built by hand: it runs once per message on the hot path, where a DRF field
    walk costs more than the rest of the fan-out. A deleted message is a
    tombstone: no content, no reactions.
    """
    sender = message.sender
    deleted = message.deleted_at is not None
    content = None if deleted else message.content
    return {
        "id": str(message.pk),
        "bamId": str(message.bam_id),
        "seq": message.seq,
        "senderId": str(message.sender_id),
        "sender": {"id": str(sender.pk), "username": sender.username},
        "toUserId": None if message.to_user_id is None else str(message.to_user_id),
        "content": content,
        "text": content,
        "type": message.type,
        "tempId": message.temp_id,
        "createdAt": iso(message.created_at),
        "editedAt": iso(message.edited_at),
        "deleted": deleted,
        "attachments": []
        if deleted
        else [attachment_payload(a) for a in message_attachments(message)],
        "reactions": []
        if deleted
        else reactions_summary(_prefetched_reactions(message)),
        "replyTo": reply_payload(message),
        "mentions": [str(u) for u in mention_ids(message)],
    }


def stored_message_payload(message: Message) -> dict:
    """The payload of a message a write just stored or found, built once for
    that write: its announcement and its answer (ack or REST body) share it."""
    built = getattr(message, "built_payload", None)
    if built is None:
        built = message.built_payload = message_payload(message)
    return built


def mention_ids(message: Message) -> list[int]:
    """Ids of the participants a message's text names now: as the write set
    them, prefetched (``with_mentions``), or one query."""
    ids = getattr(message, "mention_ids", None)
    if ids is not None:
        return ids
    rows = getattr(message, "mention_rows", None)
    if rows is None:
        if getattr(message, "created", False) or message.pk is None:
            return []  # just stored on the plain path: its text names nobody
        rows = message.mentions.filter(named=True).order_by("user_id")
    return [row.user_id for row in rows]


def reply_payload(message: Message) -> dict | None:
    """``{id, senderId, preview, deleted}`` of the message this one answers, as
    that message is now (a deleted original has no preview), or None."""
    if message.reply_to_id is None:
        return None
    original = message.reply_to
    gone = original.deleted_at is not None
    return {
        "id": str(original.pk),
        "senderId": str(original.sender_id),
        "preview": None if gone else message_preview(original),
        "deleted": gone,
    }


def message_event_payload(event: MessageEvent) -> tuple[str, dict]:
    """The Socket.IO event name and payload of a recorded message change."""
    message = event.message
    base = {"bamId": str(event.bam_id), "seq": event.seq}
    if event.kind == MessageEvent.Kind.REACTION:
        return "reaction-updated", {
            "messageId": str(message.pk),
            **base,
            "emoji": event.emoji,
            "userId": str(event.user_id),
            "on": bool(event.on),
            "count": event.count,
        }
    if event.kind == MessageEvent.Kind.DELETED:
        return "message-deleted", {
            "id": str(message.pk),
            **base,
            "deletedAt": iso(message.deleted_at),
        }
    content = None if message.deleted_at is not None else message.content
    return "message-updated", {
        "id": str(message.pk),
        **base,
        "content": content,
        "text": content,
        "editedAt": iso(message.edited_at),
    }


def message_attachments(message: Message) -> list:
    """A message's attachments in upload order: the prefetched or service-set
    ``attachment_rows`` when present, one query otherwise."""
    rows = getattr(message, "attachment_rows", None)
    if rows is None:
        if message.pk is None:
            return []
        rows = list(message.attachments.order_by("pk"))
        message.attachment_rows = rows
    return rows


# Notifications, push bodies and reply previews show this much of a message.
PREVIEW_MAX_CHARS = 100


def message_preview(message: Message) -> str:
    """The first 100 characters of a message, for notifications, push bodies and
    reply previews; "📎 attachment" for a message with attachments and no text."""
    content = message.content or ""
    if not content:
        return ATTACHMENT_PREVIEW if message_attachments(message) else ""
    return content[:PREVIEW_MAX_CHARS]


class StrictCharField(serializers.CharField):
    """A CharField that takes only JSON strings: a number is invalid, not coerced."""

    default_error_messages = {"not_a_string": "Must be a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class MessageCreateSerializer(serializers.Serializer):
    """Body of POST /bams/{id}/messages: ``text`` or ``content``, and options."""

    text = StrictCharField(
        required=False,
        max_length=CONTENT_MAX_CHARS,
        allow_blank=True,
        trim_whitespace=False,
    )
    content = StrictCharField(
        required=False,
        max_length=CONTENT_MAX_CHARS,
        allow_blank=True,
        trim_whitespace=False,
    )
    type = serializers.ChoiceField(choices=Message.Type.choices, required=False)
    tempId = serializers.CharField(
        required=False, allow_null=True, max_length=TEMP_ID_MAX_CHARS
    )
    toUserId = serializers.CharField(required=False, allow_null=True, max_length=20)
    attachmentIds = serializers.ListField(
        child=serializers.CharField(max_length=20),
        required=False,
        max_length=10,
        help_text="Your unused uploads to this BAM; content may then be empty.",
    )
    replyToId = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=20,
        help_text="A message of this BAM that this one answers.",
    )

    def validate(self, attrs):
        if attrs.get("attachmentIds"):
            return attrs
        if "content" not in attrs and "text" not in attrs:
            raise serializers.ValidationError(
                {"content": ["Give the message as `content` or `text`."]}
            )
        return attrs


class MembershipSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="user_id", read_only=True)
    username = serializers.CharField(source="user.username", read_only=True)
    joinedAt = serializers.DateTimeField(source="joined_at", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "username", "role", "joinedAt"]


class BamSerializer(serializers.ModelSerializer):
    id = serializers.CharField(read_only=True)
    ownerId = serializers.CharField(source="owner_id", read_only=True)
    participants = MembershipSerializer(source="memberships", many=True, read_only=True)
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)
    updatedAt = serializers.DateTimeField(source="updated_at", read_only=True)

    class Meta:
        model = Bam
        fields = ["id", "title", "ownerId", "participants", "createdAt", "updatedAt"]
        read_only_fields = fields


class ReadPositionSerializer(serializers.Serializer):
    userId = serializers.CharField()
    messageId = serializers.CharField(allow_null=True)


class BamDetailSerializer(BamSerializer):
    """One BAM with where each participant has read up to (GET /bams/{id})."""

    readPositions = ReadPositionSerializer(many=True)

    class Meta(BamSerializer.Meta):
        fields = [*BamSerializer.Meta.fields, "readPositions"]
        read_only_fields = fields


class BamListItemSerializer(BamSerializer):
    """A BAM in the caller's list, with their unread figures and its last message."""

    unreadCount = serializers.IntegerField()
    unreadMentions = serializers.IntegerField()
    lastReadMessageId = serializers.CharField(allow_null=True)
    lastMessage = MessageSerializer(allow_null=True)

    class Meta(BamSerializer.Meta):
        fields = [
            *BamSerializer.Meta.fields,
            "unreadCount",
            "unreadMentions",
            "lastReadMessageId",
            "lastMessage",
        ]
        read_only_fields = fields


class BamCreateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=TITLE_MAX_CHARS)
    participantIds = serializers.ListField(
        child=serializers.CharField(max_length=20), required=False, max_length=200
    )


class BamUpdateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=TITLE_MAX_CHARS)


class ParticipantAddSerializer(serializers.Serializer):
    """Either ``userId`` (one) or ``userIds`` (several)."""

    userId = serializers.CharField(required=False, max_length=20)
    userIds = serializers.ListField(
        child=serializers.CharField(max_length=20), required=False, max_length=200
    )

    def validate(self, attrs):
        ids = list(attrs.get("userIds") or [])
        if attrs.get("userId"):
            ids.append(attrs["userId"])
        if not ids:
            raise serializers.ValidationError(
                {"userId": ["Give `userId` or `userIds`."]}
            )
        return {"userIds": ids}
