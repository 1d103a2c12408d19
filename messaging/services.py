"""Writes on BAMs, memberships and messages: every rule lives here.

REST views, Socket.IO handlers and admin actions all call these functions, so a
write has the same checks and produces the same events whichever way it came in.
Events leave after commit: realtime listens to these models' signals.
"""

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from bamchat.errors import Forbidden, NotFound, invalid
from bamchat.metrics import MESSAGE_WRITE_SECONDS, timed
from bamchat.text import check_storable_text
from messaging.attachments import (
    attachment_storage_names,
    attachments_attach,
    attachments_claim,
    clean_attachment_ids,
    storage_delete,
)
from messaging.models import (
    CONTENT_MAX_CHARS,
    TEMP_ID_MAX_CHARS,
    Bam,
    Membership,
    Message,
)
from messaging.selectors import bam_get_for_participant, parse_id, with_attachments

User = get_user_model()

TITLE_MAX_CHARS = 200
MAX_PARTICIPANTS_PER_CALL = 200


def clean_title(title) -> str:
    """A BAM title: a non-blank string of at most 200 characters."""
    if not isinstance(title, str) or not title.strip():
        raise invalid("title", "A title is required.")
    title = title.strip()
    check_storable_text(title, field="title")
    if len(title) > TITLE_MAX_CHARS:
        raise invalid(
            "title", f"Ensure this field has no more than {TITLE_MAX_CHARS} characters."
        )
    return title


def clean_content(content, *, allow_empty: bool = False) -> str:
    """Message content: a string of 1..4000 characters after trimming (0.. when the
    message carries attachments)."""
    if content is None:
        if allow_empty:
            return ""
        raise invalid("content", "This field is required.")
    if not isinstance(content, str):
        raise invalid("content", "Content must be a string.")
    content = content.strip()
    if not content and not allow_empty:
        raise invalid("content", "Content may not be blank.")
    check_storable_text(content, field="content")
    if len(content) > CONTENT_MAX_CHARS:
        raise invalid(
            "content",
            f"Ensure this field has no more than {CONTENT_MAX_CHARS} characters.",
        )
    return content


def clean_type(value) -> str:
    """Message type: one of text, system, image, file (text when absent)."""
    if value is None:
        return Message.Type.TEXT
    if not isinstance(value, str) or value not in Message.Type.values:
        raise invalid("type", f"Type must be one of: {', '.join(Message.Type.values)}.")
    return value


def clean_temp_id(value) -> str | None:
    """Client deduplication id: a short string (an integer becomes its digits)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise invalid("tempId", "tempId must be a string.")
    value = str(value)
    check_storable_text(value, field="tempId")
    if len(value) > TEMP_ID_MAX_CHARS:
        raise invalid(
            "tempId", f"Ensure tempId has no more than {TEMP_ID_MAX_CHARS} characters."
        )
    return value


def _user_ids(raw_ids, *, field: str) -> list[int]:
    if raw_ids is None:
        return []
    if not isinstance(raw_ids, list):
        raise invalid(field, "Expected a list of user ids.")
    if len(raw_ids) > MAX_PARTICIPANTS_PER_CALL:
        raise invalid(field, f"At most {MAX_PARTICIPANTS_PER_CALL} users at a time.")
    ids = []
    for raw in raw_ids:
        try:
            ids.append(parse_id(raw, what="user"))
        except NotFound as exc:
            raise invalid(field, f"{raw!r} is not a valid user id.") from exc
    found = set(
        User.objects.filter(pk__in=ids, is_active=True).values_list("pk", flat=True)
    )
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise invalid(field, f"Unknown users: {', '.join(missing)}.")
    return list(dict.fromkeys(ids))


@transaction.atomic
def bam_create(*, owner, title, participant_ids=None) -> Bam:
    """Create a BAM owned by ``owner`` with the given participants (owner included)."""
    title = clean_title(title)
    ids = _user_ids(participant_ids, field="participantIds")
    bam = Bam.objects.create(title=title, owner=owner)
    Membership.objects.create(bam=bam, user=owner, role=Membership.Role.OWNER)
    Membership.objects.bulk_create(
        [
            Membership(bam=bam, user_id=uid, role=Membership.Role.MEMBER)
            for uid in ids
            if uid != owner.pk
        ]
    )
    return bam


def check_bam_owner(*, bam: Bam, user) -> None:
    """Raise Forbidden unless the user owns the BAM."""
    if bam.owner_id != user.pk:
        raise Forbidden("Only the owner of this BAM may do that.")


@transaction.atomic
def bam_rename(*, bam_id, user, title) -> Bam:
    """Rename a BAM; owner only."""
    bam = bam_get_for_participant(bam_id=bam_id, user=user)
    check_bam_owner(bam=bam, user=user)
    bam.title = clean_title(title)
    bam.save(update_fields=["title", "updated_at"])
    return bam


@transaction.atomic
def bam_delete(*, bam_id, user) -> None:
    """Delete a BAM with its messages, memberships and attachments (owner only)."""
    bam = bam_get_for_participant(bam_id=bam_id, user=user)
    check_bam_owner(bam=bam, user=user)
    stored = attachment_storage_names(bam_id=bam.pk)
    bam.delete()
    transaction.on_commit(lambda: storage_delete(stored))


@transaction.atomic
def participant_add(*, bam_id, user, new_user_ids) -> list[Membership]:
    """Add users to a BAM; owner only. Users already in it are left as they are."""
    bam = bam_get_for_participant(bam_id=bam_id, user=user)
    check_bam_owner(bam=bam, user=user)
    ids = _user_ids(new_user_ids, field="userIds")
    if not ids:
        raise invalid("userIds", "Give at least one user id.")
    existing = set(
        bam.memberships.filter(user_id__in=ids).values_list("user_id", flat=True)
    )
    created = Membership.objects.bulk_create(
        [Membership(bam=bam, user_id=uid) for uid in ids if uid not in existing]
    )
    Bam.objects.filter(pk=bam.pk).update(updated_at=timezone.now())
    return created


@transaction.atomic
def participant_remove(*, bam_id, user, removed_user_id) -> None:
    """Remove a user from a BAM: the owner may remove anyone else, anyone may leave.

    The owner cannot leave their own BAM (delete it instead).
    """
    bam = bam_get_for_participant(bam_id=bam_id, user=user)
    target_id = parse_id(removed_user_id, what="participant")
    if target_id != user.pk:
        check_bam_owner(bam=bam, user=user)
    if target_id == bam.owner_id:
        raise Forbidden("The owner cannot leave their own BAM; delete it instead.")
    deleted, _ = Membership.objects.filter(bam=bam, user_id=target_id).delete()
    if not deleted:
        raise NotFound("No such participant.")


def take_seq(bam: Bam) -> int:
    """The BAM's next sequence number; the caller holds the BAM's row lock."""
    seq = bam.last_seq + 1
    Bam.objects.filter(pk=bam.pk).update(last_seq=seq, updated_at=timezone.now())
    bam.last_seq = seq
    return seq


def check_message_type(*, sender, msg_type: str) -> None:
    """Raise Forbidden unless the sender may post this type: system is staff-only."""
    if msg_type != Message.Type.SYSTEM:
        return
    # Read from the database: callers may pass a bare User(pk=..., username=...)
    # (the Socket.IO handler does), whose is_staff says nothing.
    if not User.objects.filter(pk=sender.pk, is_staff=True, is_active=True).exists():
        raise Forbidden("Only the server or staff may post system messages.")


@timed(MESSAGE_WRITE_SECONDS)
def message_create(
    *,
    bam_id,
    sender,
    content,
    type=None,
    temp_id=None,
    to_user_id=None,
    attachment_ids=None,
) -> Message:
    """Store a participant's message; one (BAM, sender, tempId) is one message.

    Access is checked first (outsiders get NotFound whatever their tempId), then
    the type, then the tempId: a repeated (BAM, sender, tempId) returns the message
    stored the first time, with ``created`` False, and announces nothing. The
    message gets the BAM's next sequence number inside the write transaction.
    ``attachment_ids`` (at most 10) must be the sender's unused uploads to the
    same BAM; with any, ``content`` may be empty.
    """
    attachment_pks = clean_attachment_ids(attachment_ids)
    content = clean_content(content, allow_empty=bool(attachment_pks))
    msg_type = clean_type(type)
    temp_id = clean_temp_id(temp_id)
    bam_pk = parse_id(bam_id, what="BAM")
    try:
        with transaction.atomic():
            return _message_insert(
                bam_pk=bam_pk,
                sender=sender,
                content=content,
                msg_type=msg_type,
                temp_id=temp_id,
                to_user_id=to_user_id,
                attachment_pks=attachment_pks,
            )
    except IntegrityError:
        # Two writes with the same (BAM, sender, tempId) raced past the lookup
        # (possible only where writers do not serialise): the database kept one.
        if temp_id is not None:
            existing = _message_by_temp_id(
                bam_pk=bam_pk, sender=sender, temp_id=temp_id
            )
            if existing is not None:
                return existing
        raise


def _message_by_temp_id(*, bam_pk: int, sender, temp_id: str) -> Message | None:
    message = (
        Message.objects.filter(bam_id=bam_pk, sender=sender, temp_id=temp_id)
        .select_related("sender")
        .prefetch_related(with_attachments())
        .first()
    )
    if message is not None:
        message.created = False
    return message


def _message_insert(
    *, bam_pk, sender, content, msg_type, temp_id, to_user_id, attachment_pks
) -> Message:
    # Lock the BAM row: it serialises sequence numbers per BAM (PostgreSQL row lock;
    # SQLite runs IMMEDIATE transactions, which serialise all writers).
    bam = (
        Bam.objects.select_for_update(of=("self",))
        .filter(pk=bam_pk, memberships__user=sender)
        .first()
    )
    if bam is None:
        raise NotFound("No such BAM.")
    check_message_type(sender=sender, msg_type=msg_type)
    if temp_id is not None:
        existing = _message_by_temp_id(bam_pk=bam.pk, sender=sender, temp_id=temp_id)
        if existing is not None:
            return existing
    to_user = None
    if to_user_id not in (None, ""):
        try:
            recipient_pk = parse_id(to_user_id, what="user")
        except NotFound as exc:
            raise invalid("toUserId", "toUserId is not a valid user id.") from exc
        to_user = User.objects.filter(
            pk=recipient_pk, memberships__bam_id=bam.pk
        ).first()
        if to_user is None:
            raise invalid("toUserId", "toUserId must be a participant of this BAM.")
    attachments = attachments_claim(ids=attachment_pks, bam_id=bam.pk, sender=sender)
    seq = take_seq(bam)
    message = Message(
        bam=bam,
        sender=sender,
        to_user=to_user,
        content=content,
        type=msg_type,
        temp_id=temp_id,
        seq=seq,
    )
    # Set before save: the payload announced on post_save lists them.
    message.attachment_rows = attachments
    message.save()
    attachments_attach(message=message, attachments=attachments)
    message.created = True
    return message
