"""Mentions: which participants a message's text names, and who is newly named.

``@username`` names a participant by the username's normalised form
(``accounts.models.username_key``: case-insensitive); ``@all`` from the BAM's
owner names every participant. The sender and non-participants are never
mentioned. Services call these inside their write transaction.
"""

import re

from accounts.models import username_key
from messaging.models import Bam, Membership, Mention, Message

# ``@`` after a space, a start of text or punctuation, not inside a word or an
# e-mail address; the characters Django allows in usernames.
MENTION = re.compile(r"(?<![\w@.+-])@([\w.@+-]{1,150})")
EVERYONE = "all"
# Distinct names looked up per message at most: a 4,000-character text could
# hold ~1,300, and a message naming more than this many is a broadcast.
MAX_NAMES = 50


def names_in(content: str) -> list[str]:
    """The normalised names a text mentions (at most ``MAX_NAMES``), in order."""
    names: dict[str, None] = {}
    for match in MENTION.finditer(content or ""):
        name = username_key(match.group(1).rstrip(".-"))
        if name:
            names[name] = None
        if len(names) >= MAX_NAMES:
            break
    return list(names)


def mentioned_ids(*, bam_id: int, sender_id: int, content: str) -> list[int]:
    """Sorted ids of the participants (never the sender) the text mentions."""
    names = names_in(content)
    if not names:
        return []
    members = Membership.objects.filter(bam_id=bam_id).exclude(user_id=sender_id)
    everyone = (
        EVERYONE in names and Bam.objects.filter(pk=bam_id, owner_id=sender_id).exists()
    )
    if not everyone:
        members = members.filter(user__username_key__in=names)
    return sorted(members.values_list("user_id", flat=True))


def mentions_record(*, message: Message) -> list[int]:
    """Store a new message's mentions; their user ids (also set as
    ``message.mention_ids`` for its payload)."""
    ids = mentioned_ids(
        bam_id=message.bam_id, sender_id=message.sender_id, content=message.content
    )
    Mention.objects.bulk_create(
        [Mention(message=message, bam_id=message.bam_id, user_id=u) for u in ids]
    )
    message.mention_ids = ids
    return ids


def mentions_update(*, message: Message) -> list[int]:
    """After an edit: mark who the new text names; the ids named for the first
    time in this message's life (they are to be notified)."""
    ids = set(
        mentioned_ids(
            bam_id=message.bam_id,
            sender_id=message.sender_id,
            content=message.content,
        )
    )
    rows = Mention.objects.filter(message=message)
    known = set(rows.values_list("user_id", flat=True))
    rows.filter(user_id__in=ids).exclude(named=True).update(named=True)
    rows.exclude(user_id__in=ids).filter(named=True).update(named=False)
    newly = sorted(ids - known)
    Mention.objects.bulk_create(
        [Mention(message=message, bam_id=message.bam_id, user_id=u) for u in newly]
    )
    message.mention_ids = sorted(ids)
    return newly
