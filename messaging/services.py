"""Writes on BAMs, memberships and messages: every rule lives here.

REST views, Socket.IO handlers and admin actions all call these functions, so a
write has the same checks and produces the same events whichever way it came in.
Events leave after commit: realtime listens to these models' signals.
"""

import time

from django.contrib.auth import get_user_model
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models.signals import post_save
from django.utils import timezone

from bamchat.errors import DomainError, Forbidden, NotFound, invalid
from bamchat.metrics import MESSAGE_WRITE_SECONDS
from messaging import statements
from messaging.attachments import (
    attachment_storage_names,
    attachments_attach,
    attachments_claim,
    storage_delete,
)
from messaging.cleaning import clean_title
from messaging.drafts import MessageDraft, message_draft
from messaging.mentions import mentions_record
from messaging.models import Bam, Membership, Message
from messaging.selectors import bam_get_for_participant, parse_id, with_attachments

User = get_user_model()

MAX_PARTICIPANTS_PER_CALL = 200


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
    statements.audience_changed(bam_id=bam.pk)  # bulk_create sends no signal
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
    statements.audience_changed(bam_id=bam.pk)  # bulk_create sends no signal
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


def message_create(**fields) -> Message:
    """Store a participant's message; one (BAM, sender, tempId) is one message.

    Takes ``message_draft``'s arguments. Access is checked first (outsiders get
    NotFound whatever their tempId), then the type, then the tempId: a repeated
    (BAM, sender, tempId) returns the message stored the first time, with
    ``created`` False, and announces nothing. The message gets the BAM's next
    sequence number inside the write transaction. ``attachment_ids`` (at most
    10) must be the sender's unused uploads to the same BAM; with any,
    ``content`` may be empty. ``reply_to_id`` must name a message of the same
    BAM that is not deleted. Participants named in the text are recorded as
    mentioned (``messaging.mentions``).
    """
    (result,) = messages_create([message_draft(**fields)])
    if isinstance(result, Exception):
        raise result
    return result


def messages_create(drafts: list[MessageDraft]) -> list[Message | Exception]:
    """Store several messages in one transaction (group commit); each result is
    its message or the error that refused it, in the order given.

    A refusal (NotFound, Forbidden, Invalid) writes nothing and does not affect
    the others. BAM rows are locked in id order, so two processes storing
    batches never deadlock. Should the database fail the batch, each message is
    tried again in its own transaction, so one cannot fail the rest.
    """
    started = time.perf_counter()
    order = sorted(range(len(drafts)), key=lambda i: drafts[i].bam_id)
    results = None
    if len(drafts) > 1 and all(draft.plain for draft in drafts):
        results = _store_plain_batch(drafts, order)
    if results is None:
        results = _store_each(drafts, order)
    # Each stored message took the whole transaction to become durable.
    took = time.perf_counter() - started
    for result in results:
        if isinstance(result, Message) and result.created:
            MESSAGE_WRITE_SECONDS.observe(took)
    return results


def _store_plain_batch(drafts: list[MessageDraft], order: list[int]) -> list | None:
    """Plain messages only: the whole batch in a few statements; None, with
    nothing written, when one of them needs to be stored on its own (an
    outsider, a repeated tempId) or the database failed the batch."""
    now = timezone.now()
    messages = [_new_message(draft, now=now) for draft in drafts]
    try:
        with transaction.atomic():
            if not statements.messages_insert([messages[i] for i in order], now=now):
                raise _OneByOne
            for i in order:
                _announce(messages[i], attachments=[])
    except (_OneByOne, DatabaseError):
        return None
    return messages


class _OneByOne(Exception):
    """Undoes a batch that must be stored message by message."""


def _store_each(drafts: list[MessageDraft], order: list[int]) -> list:
    results: list = [None] * len(drafts)
    try:
        with transaction.atomic():
            for i in order:
                results[i] = _store_refusable(drafts[i])
    except DatabaseError:
        if len(drafts) == 1:
            raise
        for i in order:
            try:
                with transaction.atomic():
                    results[i] = _store_refusable(drafts[i])
            except DatabaseError as exc:
                results[i] = exc
    return results


def _store_refusable(draft: MessageDraft) -> Message | DomainError:
    try:
        if draft.plain:
            return _store_plain(draft)
        with transaction.atomic():  # a savepoint: a refusal undoes the seq
            return _store_checked(draft)
    except DomainError as exc:
        return exc


def _store_plain(draft: MessageDraft) -> Message:
    now = timezone.now()
    message = _new_message(draft, now=now)
    outcome = statements.message_insert_with_seq(
        message, user_id=draft.sender.pk, now=now
    )
    if outcome == "outsider":
        raise NotFound("No such BAM.")
    if outcome == "stored":
        return _announce(message, attachments=[])
    statements.seq_give_back(bam_id=draft.bam_id)
    return _stored_with_temp_id(draft)


def _store_checked(draft: MessageDraft) -> Message:
    now = timezone.now()
    taken = statements.seq_take(bam_id=draft.bam_id, user_id=draft.sender.pk, now=now)
    if taken is None:
        raise NotFound("No such BAM.")
    check_message_type(sender=draft.sender, msg_type=draft.type)
    if draft.temp_id is not None:
        existing = _message_by_temp_id(draft)
        if existing is not None:
            transaction.set_rollback(True)  # gives the seq back
            return existing
    to_user_id = None
    if draft.to_user_id not in (None, ""):
        try:
            to_user_id = parse_id(draft.to_user_id, what="user")
        except NotFound as exc:
            raise invalid("toUserId", "toUserId is not a valid user id.") from exc
        if not Membership.objects.filter(
            bam_id=draft.bam_id, user_id=to_user_id
        ).exists():
            raise invalid("toUserId", "toUserId must be a participant of this BAM.")
    reply_to = _reply_to(draft)
    attachments = attachments_claim(
        ids=list(draft.attachment_pks), bam_id=draft.bam_id, sender=draft.sender
    )
    message = _new_message(draft, now=now, to_user_id=to_user_id)
    message.reply_to = reply_to
    message.seq, message.audience_version = taken
    if not statements.message_row_insert(message):
        # The same tempId was committed meanwhile by another process.
        transaction.set_rollback(True)
        return _stored_with_temp_id(draft)
    attachments_attach(message=message, attachments=attachments)
    mentions_record(message=message)
    return _announce(message, attachments=attachments)


def _reply_to(draft: MessageDraft) -> Message | None:
    """The message answered: one of the same BAM, not deleted; else Invalid."""
    if draft.reply_to_id is None:
        return None
    original = (
        Message.objects.filter(
            pk=draft.reply_to_id, bam_id=draft.bam_id, deleted_at__isnull=True
        )
        .prefetch_related(with_attachments())
        .first()
    )
    if original is None:
        raise invalid("replyToId", "replyToId must be a message of this BAM.")
    return original


def _new_message(draft: MessageDraft, *, now, to_user_id=None) -> Message:
    # ``seq`` and ``audience_version`` (read with the seq under the BAM's lock,
    # so receivers may use cached audiences) come from the write itself.
    return Message(
        bam_id=draft.bam_id,
        sender=draft.sender,
        to_user_id=to_user_id,
        content=draft.content,
        type=draft.type,
        temp_id=draft.temp_id,
        created_at=now,
    )


def _announce(message: Message, *, attachments: list) -> Message:
    """Send ``post_save`` as ``Model.save`` would: the event path starts there."""
    message.created = True
    message.attachment_rows = attachments  # the announced payload lists them
    post_save.send(
        sender=Message,
        instance=message,
        created=True,
        update_fields=None,
        raw=False,
        using=message._state.db,
    )
    return message


def _stored_with_temp_id(draft: MessageDraft) -> Message:
    existing = _message_by_temp_id(draft)
    if existing is None:  # cannot happen: the insert conflicted on it
        raise IntegrityError("tempId conflict without a stored message")
    return existing


def _message_by_temp_id(draft: MessageDraft) -> Message | None:
    message = (
        Message.objects.filter(
            bam_id=draft.bam_id, sender_id=draft.sender.pk, temp_id=draft.temp_id
        )
        .select_related("sender", "reply_to")
        .prefetch_related(with_attachments(), with_attachments("reply_to__"))
        .first()
    )
    if message is not None:
        message.created = False
    return message
