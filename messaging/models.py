from django.conf import settings
from django.db import models
from django.db.models import Q

CONTENT_MAX_CHARS = 4000
TEMP_ID_MAX_CHARS = 100
TITLE_MAX_CHARS = 200


class Bam(models.Model):
    """A conversation: a title, an owner and participants who exchange messages."""

    title = models.CharField(max_length=TITLE_MAX_CHARS)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="owned_bams"
    )
    participants = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="bams"
    )
    # Last sequence number handed out; bumped under a row lock by message_create.
    last_seq = models.BigIntegerField(default=0, editable=False)
    # Bumped whenever who hears of the BAM's messages may change (participants
    # added or removed, mutes, their push devices). Every message write reads it
    # with the seq, so per-process caches keyed by it are never stale.
    audience_version = models.BigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # No default ordering: hot-path lookups by id should not sort; lists
        # order explicitly (selectors.bam_list_for_user, the admin).
        verbose_name = "BAM"

    def __str__(self) -> str:
        return f"{self.title} (#{self.pk})"


class Membership(models.Model):
    """One user's place in one BAM."""

    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        MEMBER = "member", "Member"

    bam = models.ForeignKey(Bam, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    # A muted BAM sends this user no push notifications (socket events still flow).
    muted = models.BooleanField(default=False)
    joined_at = models.DateTimeField(auto_now_add=True)
    # How far the user has read: the seq and id of the last message read. Only
    # ever moves forward (lifecycle.read_mark).
    last_read_seq = models.BigIntegerField(default=0, editable=False)
    last_read_message = models.ForeignKey(
        "Message",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bam", "user"], name="membership_unique_bam_user"
            )
        ]
        indexes = [models.Index(fields=["user", "bam"])]

    def __str__(self) -> str:
        return f"{self.user} in {self.bam_id} ({self.role})"


class Message(models.Model):
    """One message in a BAM, numbered by a per-BAM sequence assigned at write time."""

    class Type(models.TextChoices):
        TEXT = "text", "Text"
        SYSTEM = "system", "System"
        IMAGE = "image", "Image"
        FILE = "file", "File"

    bam = models.ForeignKey(Bam, on_delete=models.CASCADE, related_name="messages")
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sent_messages"
    )
    to_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="received_messages",
    )
    content = models.TextField(max_length=CONTENT_MAX_CHARS)
    type = models.CharField(max_length=10, choices=Type.choices, default=Type.TEXT)
    # NULL, not "": messages without a tempId stay out of the unique triple.
    temp_id = models.CharField(max_length=TEMP_ID_MAX_CHARS, null=True, blank=True)  # noqa: DJ001
    seq = models.BigIntegerField(editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    edited_at = models.DateTimeField(null=True, blank=True, editable=False)
    # A deleted message stays as a tombstone: its content is erased for good.
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The message of the same BAM this one answers (services.clean_reply_to).
    reply_to = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )

    class Meta:
        ordering = ["bam", "seq"]
        constraints = [
            models.UniqueConstraint(
                fields=["bam", "seq"], name="message_unique_bam_seq"
            ),
            # A tempId deduplicates within one BAM: the same tempId in another
            # BAM is another message (services.message_create checks access first).
            models.UniqueConstraint(
                fields=["bam", "sender", "temp_id"],
                condition=Q(temp_id__isnull=False),
                name="message_unique_bam_sender_temp_id",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} in {self.bam_id} by {self.sender_id}"


class MessageEvent(models.Model):
    """A change to an existing message, numbered in its BAM's sequence.

    New messages are their own event (``Message.seq``); edits, deletions and
    reaction changes are recorded here so that a client replaying a BAM after
    some ``seq`` gets every change exactly once, in order.
    """

    class Kind(models.TextChoices):
        UPDATED = "updated", "Edited"
        DELETED = "deleted", "Deleted"
        REACTION = "reaction", "Reaction"

    bam = models.ForeignKey(Bam, on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="events"
    )
    seq = models.BigIntegerField(editable=False)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # Reaction changes: who, which emoji, added or removed, and the new count.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
    )
    emoji = models.CharField(max_length=64, blank=True)
    on = models.BooleanField(null=True)
    count = models.PositiveIntegerField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["bam", "seq"]
        constraints = [
            models.UniqueConstraint(
                fields=["bam", "seq"], name="messageevent_unique_bam_seq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} of #{self.message_id} (seq {self.seq})"


class Reaction(models.Model):
    """One user's emoji on one message."""

    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="reactions"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    emoji = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "user", "emoji"], name="reaction_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.emoji} by {self.user_id} on #{self.message_id}"


class Attachment(models.Model):
    """An uploaded file in a BAM; unattached until a message of its uploader uses it."""

    class Kind(models.TextChoices):
        IMAGE = "image", "Image"
        FILE = "file", "File"

    bam = models.ForeignKey(Bam, on_delete=models.CASCADE, related_name="attachments")
    uploader = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attachments"
    )
    # NULL until a message uses it; a message row that goes sets it back to NULL,
    # and the cleanup job then removes the files like any unattached upload.
    message = models.ForeignKey(
        Message,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="attachments",
    )
    name = models.CharField(max_length=255)
    size = models.BigIntegerField()
    content_type = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    # Storage names are random (never the client's file name).
    file = models.CharField(max_length=255)
    thumbnail = models.CharField(max_length=255, blank=True)
    thumbnail_content_type = models.CharField(max_length=100, blank=True)
    # SHA-256 of the stored bytes: the download's ETag.
    digest = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["message", "created_at"])]

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk} in {self.bam_id})"


class Mention(models.Model):
    """A participant named in a message (``@username``, or ``@all`` by the owner).

    Rows are never deleted by an edit: ``named`` turns false when the name goes,
    so a name that comes back is not notified twice (messaging.mentions).
    """

    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="mentions"
    )
    # The message's BAM, copied so unread mentions are counted per BAM by index.
    bam = models.ForeignKey(Bam, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    named = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["message", "user"], name="mention_unique_message_user"
            )
        ]
        indexes = [models.Index(fields=["user", "bam"])]

    def __str__(self) -> str:
        return f"@{self.user_id} in #{self.message_id}"
