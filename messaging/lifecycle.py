"""Writes on existing messages and read state: edit, delete, react, mark read.

Every change of a message takes its BAM's next ``seq`` under the BAM's row lock
and is recorded as a ``MessageEvent``, so it travels and replays exactly like a
new message (realtime announces it after commit). REST views, Socket.IO
handlers and the admin call these functions; the rules live only here.
"""

import unicodedata

import regex
from django.db import transaction
from django.utils import timezone

from bamchat.errors import Forbidden, NotFound, invalid
from bamchat.text import check_storable_text
from messaging.attachments import message_attachments_delete
from messaging.cleaning import clean_content
from messaging.mentions import mentions_update
from messaging.models import Bam, Membership, Message, MessageEvent, Reaction
from messaging.selectors import parse_id, unread_count
from messaging.serializers import reactions_summary
from messaging.services import take_seq

# At most this many distinct emoji on one message.
MAX_EMOJI_PER_MESSAGE = 20
EMOJI_MAX_BYTES = 32
SHORTCODE = regex.compile(r":[a-z0-9_+-]{1,32}:")
GRAPHEME = regex.compile(r"\X")
REGIONAL_INDICATORS = range(0x1F1E6, 0x1F200)
KEYCAP = "\u20e3"


def clean_emoji(value) -> str:
    """One emoji (a single grapheme cluster of at most 32 bytes) or a
    ``:shortcode:`` of ``[a-z0-9_+-]{1,32}``."""
    if not isinstance(value, str) or not value:
        raise invalid("emoji", "emoji must be one emoji or a :shortcode:.")
    check_storable_text(value, field="emoji")
    if SHORTCODE.fullmatch(value):
        return value
    if len(value.encode("utf-8")) > EMOJI_MAX_BYTES or not GRAPHEME.fullmatch(value):
        raise invalid("emoji", "emoji must be a single emoji or a :shortcode:.")
    first = value[0]
    pictographic = unicodedata.category(first) == "So"
    flag = ord(first) in REGIONAL_INDICATORS
    keycap = value.endswith(KEYCAP) and first in "0123456789#*"
    if not (pictographic or flag or keycap):
        raise invalid("emoji", "emoji must be a single emoji or a :shortcode:.")
    return value


def _bam_locked(*, message: Message, user, as_staff: bool = False) -> Bam:
    """The message's BAM, row-locked, if the user takes part in it (or is staff)."""
    bams = Bam.objects.select_for_update(of=("self",)).filter(pk=message.bam_id)
    if not as_staff:
        bams = bams.filter(memberships__user=user)
    bam = bams.first()
    if bam is None:
        raise NotFound("No such message.")
    return bam


def _message(*, message_id, bam_id=None, alive: bool = True) -> Message:
    pk = parse_id(message_id, what="message")
    messages = Message.objects.select_related("sender").filter(pk=pk)
    if bam_id is not None:
        messages = messages.filter(bam_id=parse_id(bam_id, what="BAM"))
    message = messages.first()
    if message is None or (alive and message.deleted_at is not None):
        raise NotFound("No such message.")
    return message


def _record(
    bam: Bam, message: Message, kind: str, newly_mentioned=(), **fields
) -> MessageEvent:
    event = MessageEvent(
        bam=bam, message=message, seq=take_seq(bam), kind=kind, **fields
    )
    # Read by the post_save receivers that notify the newly mentioned.
    event.newly_mentioned = list(newly_mentioned)
    event.save(force_insert=True)
    return event


@transaction.atomic
def message_edit(*, message_id, user, content, bam_id=None) -> Message:
    """Replace a message's content (its sender only); the room is told, and
    participants the new text names for the first time are notified."""
    content = clean_content(content)
    message = _message(message_id=message_id, bam_id=bam_id)
    bam = _bam_locked(message=message, user=user)
    message.refresh_from_db(fields=["content", "deleted_at", "edited_at"])
    if message.deleted_at is not None:
        raise NotFound("No such message.")
    if message.sender_id != user.pk:
        raise Forbidden("Only the sender may edit a message.")
    if content != message.content:
        message.content = content
        message.edited_at = timezone.now()
        message.save(update_fields=["content", "edited_at"])
        newly = mentions_update(message=message)
        _record(bam, message, MessageEvent.Kind.UPDATED, newly_mentioned=newly)
    return message


@transaction.atomic
def message_delete(*, message_id, user, bam_id=None, as_staff: bool = False) -> Message:
    """Erase a message for good, keeping a tombstone (sender, BAM owner or staff)."""
    message = _message(message_id=message_id, bam_id=bam_id)
    bam = _bam_locked(message=message, user=user, as_staff=as_staff)
    message.refresh_from_db(fields=["deleted_at"])
    if message.deleted_at is not None:
        raise NotFound("No such message.")
    if not (as_staff or user.pk in (message.sender_id, bam.owner_id)):
        raise Forbidden("Only the sender or the BAM's owner may delete a message.")
    message.content = ""
    message.deleted_at = timezone.now()
    message.save(update_fields=["content", "deleted_at"])
    Reaction.objects.filter(message=message).delete()
    message_attachments_delete(message_id=message.pk)
    _record(bam, message, MessageEvent.Kind.DELETED)
    return message


@transaction.atomic
def reaction_set(*, message_id, user, emoji, on=True, bam_id=None) -> list[dict]:
    """Add (``on``) or remove the user's reaction; returns the message's reactions."""
    emoji = clean_emoji(emoji)
    if not isinstance(on, bool):
        raise invalid("on", "on must be true or false.")
    message = _message(message_id=message_id, bam_id=bam_id)
    bam = _bam_locked(message=message, user=user)
    message.refresh_from_db(fields=["deleted_at"])
    if message.deleted_at is not None:
        raise NotFound("No such message.")
    mine = Reaction.objects.filter(message=message, user=user, emoji=emoji)
    changed = False
    if on and not mine.exists():
        used = set(
            Reaction.objects.filter(message=message).values_list("emoji", flat=True)
        )
        if emoji not in used and len(used) >= MAX_EMOJI_PER_MESSAGE:
            raise invalid(
                "emoji", f"A message takes at most {MAX_EMOJI_PER_MESSAGE} emoji."
            )
        Reaction.objects.create(message=message, user=user, emoji=emoji)
        changed = True
    elif not on:
        changed = mine.delete()[0] > 0
    reactions = list(Reaction.objects.filter(message=message))
    if changed:
        count = sum(1 for r in reactions if r.emoji == emoji)
        _record(
            bam,
            message,
            MessageEvent.Kind.REACTION,
            user=user,
            emoji=emoji,
            on=on,
            count=count,
        )
    return reactions_summary(reactions)


@transaction.atomic
def read_mark(*, bam_id, user, message_id) -> dict:
    """Move the user's read position forward to a message (never back)."""
    bam_pk = parse_id(bam_id, what="BAM")
    membership = (
        Membership.objects.select_for_update().filter(bam_id=bam_pk, user=user).first()
    )
    if membership is None:
        raise NotFound("No such BAM.")
    message = _message(message_id=message_id, bam_id=bam_pk, alive=False)
    if message.seq > membership.last_read_seq:
        membership.last_read_seq = message.seq
        membership.last_read_message = message
        membership.save(update_fields=["last_read_seq", "last_read_message"])
    last = membership.last_read_message_id
    return {
        "bamId": str(bam_pk),
        "messageId": None if last is None else str(last),
        "unreadCount": unread_count(
            bam_id=bam_pk, user_id=user.pk, after_seq=membership.last_read_seq
        ),
    }
