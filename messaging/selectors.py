"""Reads on BAMs, memberships and messages."""

import re

from django.db.models import QuerySet

from bamchat.errors import NotFound
from messaging.models import Bam, Membership, Message

# Up to 18 ASCII digits: always below 2**63, the largest id a database column holds.
_ASCII_ID = re.compile(r"[0-9]{1,18}")


def parse_id(raw, *, what: str = "id") -> int:
    """A client-supplied id (string or integer) as a positive int, or NotFound.

    Strings must be ASCII digits: ``str.isdigit`` also accepts ``²`` or ``①``,
    which ``int`` refuses, and other scripts' digits, which ``int`` converts.
    """
    if isinstance(raw, bool):
        raise NotFound(f"No such {what}.")
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str) and _ASCII_ID.fullmatch(raw.strip()):
        value = int(raw.strip())
    else:
        raise NotFound(f"No such {what}.")
    if not 0 < value < 2**63:
        raise NotFound(f"No such {what}.")
    return value


def bam_list_for_user(*, user) -> QuerySet[Bam]:
    """BAMs the user takes part in, most recently active first."""
    return (
        Bam.objects.filter(memberships__user=user)
        .select_related("owner")
        .order_by("-updated_at", "-id")
    )


def bam_get_for_participant(*, bam_id, user) -> Bam:
    """The BAM if the user takes part in it; NotFound otherwise (never Forbidden)."""
    pk = parse_id(bam_id, what="BAM")
    bam = (
        Bam.objects.filter(pk=pk, memberships__user=user)
        .select_related("owner")
        .first()
    )
    if bam is None:
        raise NotFound("No such BAM.")
    return bam


def is_participant(*, bam_id: int, user_id: int) -> bool:
    """Whether the user takes part in the BAM."""
    return Membership.objects.filter(bam_id=bam_id, user_id=user_id).exists()


def bam_last_seq_for(*, bam_id: int, user_id: int) -> int | None:
    """The BAM's last sequence number if the user takes part in it, else None."""
    return (
        Bam.objects.filter(pk=bam_id, memberships__user_id=user_id)
        .values_list("last_seq", flat=True)
        .first()
    )


def participant_ids(*, bam_id: int) -> list[int]:
    """Ids of every participant of the BAM."""
    return list(
        Membership.objects.filter(bam_id=bam_id).values_list("user_id", flat=True)
    )


def co_participant_ids(*, user_id: int) -> list[int]:
    """Ids of every user who shares a BAM with the user (the user included)."""
    bam_ids = Membership.objects.filter(user_id=user_id).values("bam_id")
    ids = set(
        Membership.objects.filter(bam_id__in=bam_ids).values_list("user_id", flat=True)
    )
    ids.add(user_id)
    return sorted(ids)


def message_list(*, bam: Bam) -> QuerySet[Message]:
    """Messages of a BAM with what their payload needs."""
    return Message.objects.filter(bam=bam).select_related("sender")


def messages_after(*, bam: Bam, after_message_id) -> QuerySet[Message]:
    """Messages of the BAM written after the given message, oldest first."""
    pk = parse_id(after_message_id, what="message")
    anchor = (
        Message.objects.filter(pk=pk, bam=bam).values_list("seq", flat=True).first()
    )
    if anchor is None:
        raise NotFound("No such message in this BAM.")
    return message_list(bam=bam).filter(seq__gt=anchor).order_by("seq")


def bam_with_participants(*, bam_id: int) -> Bam:
    """A BAM with its memberships and their users loaded."""
    return Bam.objects.prefetch_related("memberships__user").get(pk=bam_id)
