"""Reads on BAMs, memberships and messages."""

import re
from datetime import UTC, timedelta

from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, TruncMinute
from django.utils import timezone

from bamchat.errors import DomainError, Invalid, NotFound
from messaging import statements
from messaging.models import (
    Attachment,
    Bam,
    Membership,
    Mention,
    Message,
    MessageEvent,
)

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


def unread_filter(*, user_id: int, after_seq) -> Q:
    """Messages that count as unread: from others, after the read position,
    not deleted (``after_seq`` may be an expression)."""
    return Q(seq__gt=after_seq, deleted_at__isnull=True) & ~Q(sender_id=user_id)


def unread_count(*, bam_id: int, user_id: int, after_seq: int) -> int:
    """How many messages of a BAM are unread for a user."""
    return Message.objects.filter(
        unread_filter(user_id=user_id, after_seq=after_seq), bam_id=bam_id
    ).count()


def with_mentions() -> Prefetch:
    """Prefetch of messages' current mentions into ``mention_rows``."""
    return Prefetch(
        "mentions",
        queryset=Mention.objects.filter(named=True).order_by("user_id"),
        to_attr="mention_rows",
    )


def with_attachments(via: str = "") -> Prefetch:
    """Prefetch of messages' attachments (one query per page, not per message) into
    ``attachment_rows``, where ``message_payload`` reads them; ``via="reply_to__"``
    for the messages they answer (their reply previews)."""
    return Prefetch(
        f"{via}attachments",
        queryset=Attachment.objects.order_by("pk"),
        to_attr="attachment_rows",
    )


def bam_list_for_user(*, user) -> QuerySet[Bam]:
    """BAMs the user takes part in, most recently active first, each with the
    user's read position, unread count, unread mentions and last message id (no
    query per BAM)."""
    mine = Membership.objects.filter(bam=OuterRef("pk"), user=user)
    unread = (
        Message.objects.filter(
            unread_filter(user_id=user.pk, after_seq=OuterRef("read_seq")),
            bam=OuterRef("pk"),
        )
        .order_by()
        .values("bam")
        .annotate(n=Count("pk"))
        .values("n")
    )
    mentions = (
        Mention.objects.filter(
            user=user,
            named=True,
            bam=OuterRef("pk"),
            message__seq__gt=OuterRef("read_seq"),
            message__deleted_at__isnull=True,
        )
        .order_by()
        .values("bam")
        .annotate(n=Count("pk"))
        .values("n")
    )
    last = Message.objects.filter(bam=OuterRef("pk")).order_by("-seq").values("pk")
    return (
        Bam.objects.filter(memberships__user=user)
        .annotate(
            read_seq=Subquery(mine.values("last_read_seq")[:1]),
            read_message_id=Subquery(mine.values("last_read_message_id")[:1]),
            unread_count=Coalesce(Subquery(unread), 0),
            unread_mentions=Coalesce(Subquery(mentions), 0),
            last_message_id=Subquery(last[:1]),
        )
        .select_related("owner")
        .order_by("-updated_at", "-id")
    )


def messages_by_id(ids) -> dict[int, Message]:
    """Messages (with what their payload needs) by id, in one query per kind."""
    return {m.pk: m for m in message_list_query().filter(pk__in=list(ids))}


def read_positions(*, bam_id: int) -> list[dict]:
    """``[{userId, messageId}]``: where each participant has read up to."""
    rows = Membership.objects.filter(bam_id=bam_id).order_by("user_id")
    return [
        {
            "userId": str(user_id),
            "messageId": None if message_id is None else str(message_id),
        }
        for user_id, message_id in rows.values_list("user_id", "last_read_message_id")
    ]


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


def bam_get_for_staff(*, bam_id) -> Bam:
    """Any BAM by id (staff see every BAM); NotFound if there is none."""
    bam = Bam.objects.filter(pk=parse_id(bam_id, what="BAM")).first()
    if bam is None:
        raise NotFound("No such BAM.")
    return bam


def shares_a_bam(*, user_id: int, other_id: int) -> bool:
    """Whether two users take part in at least one BAM together."""
    mine = Membership.objects.filter(user_id=user_id).values("bam_id")
    return Membership.objects.filter(user_id=other_id, bam_id__in=mine).exists()


def is_participant(*, bam_id: int, user_id: int) -> bool:
    """Whether the user takes part in the BAM."""
    return Membership.objects.filter(bam_id=bam_id, user_id=user_id).exists()


def bam_join_points(requests) -> list:
    """``bam_join_point`` for many ``(bam_id, user_id, since_message_id)`` at
    once, the membership of all read in one statement: one result per request,
    ``(last_seq, anchor)`` or the DomainError that refuses it."""
    last_seqs = statements.last_seqs_for_participants(
        pairs=[(bam_id, user_id) for bam_id, user_id, _ in requests]
    )
    results = []
    for (bam_id, _, since), last_seq in zip(requests, last_seqs, strict=True):
        try:
            results.append(_join_point(bam_id, last_seq, since))
        except DomainError as exc:
            results.append(exc)
    return results


def bam_join_point(
    *, bam_id: int, user_id: int, since_message_id=None
) -> tuple[int, int | None]:
    """Where a participant joining a BAM stands: its last ``seq``, and the ``seq``
    of ``since_message_id`` when given. NotFound for outsiders and unknown ids."""
    last_seq = statements.last_seq_for_participant(bam_id=bam_id, user_id=user_id)
    return _join_point(bam_id, last_seq, since_message_id)


def _join_point(bam_id: int, last_seq: int | None, since_message_id):
    if last_seq is None:
        raise NotFound("No such BAM.")
    if since_message_id is None:
        return last_seq, None
    try:
        pk = parse_id(since_message_id, what="message")
    except NotFound:
        raise Invalid(
            "since must be a message id.", fields={"since": ["Not a message id."]}
        ) from None
    anchor = (
        Message.objects.filter(pk=pk, bam_id=bam_id)
        .values_list("seq", flat=True)
        .first()
    )
    if anchor is None:
        raise NotFound("since: no such message in this BAM.")
    return last_seq, anchor


def bam_events_between(
    *, bam_id: int, after_seq: int, before_seq: int | None = None, limit=None
) -> list[tuple[str, dict]]:
    """A BAM's stored events with ``after_seq < seq < before_seq``, in ``seq`` order,
    as ``(event name, payload)``: what a client that saw ``after_seq`` has missed.

    New messages are their own events; edits, deletions and reactions are
    ``MessageEvent`` rows. Payloads show the messages as they are now, so a
    client applying the events in order ends in the current state.
    """
    from messaging.serializers import message_event_payload, message_payload

    in_range = {"bam_id": bam_id, "seq__gt": after_seq}
    if before_seq is not None:
        in_range["seq__lt"] = before_seq
    messages = message_list_query().filter(**in_range).order_by("seq")
    changes = (
        MessageEvent.objects.filter(**in_range)
        .select_related("message")
        .order_by("seq")
    )
    if limit is not None:
        messages, changes = messages[:limit], changes[:limit]
    events = [(m.seq, "new-message", message_payload(m)) for m in messages]
    events += [(c.seq, *message_event_payload(c)) for c in changes]
    events.sort(key=lambda e: e[0])
    if limit is not None:
        events = events[:limit]
    return [(name, payload) for _, name, payload in events]


def message_list_query() -> QuerySet[Message]:
    """Messages with what their payload needs (sender, reactions, attachments,
    the message answered)."""
    return Message.objects.select_related("sender", "reply_to").prefetch_related(
        "reactions", with_mentions(), with_attachments(), with_attachments("reply_to__")
    )


def message_list(*, bam: Bam) -> QuerySet[Message]:
    """Messages of a BAM with what their payload needs."""
    return message_list_query().filter(bam=bam)


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


def message_counts_since(*, now) -> dict:
    """Messages stored in the last minute and the last hour."""
    return {
        "messagesLastMinute": Message.objects.filter(
            created_at__gte=now - timedelta(minutes=1)
        ).count(),
        "messagesLastHour": Message.objects.filter(
            created_at__gte=now - timedelta(hours=1)
        ).count(),
    }


def messages_per_minute(*, minutes: int = 60) -> list[dict]:
    """Messages stored in each of the last ``minutes`` minutes (the current one last),
    as ``[{minute, count}]`` with empty minutes included."""
    from bamchat.formats import iso

    current = timezone.now().replace(second=0, microsecond=0)
    first = current - timedelta(minutes=minutes - 1)
    counts = dict(
        Message.objects.filter(created_at__gte=first)
        .annotate(minute=TruncMinute("created_at", tzinfo=UTC))
        .order_by()
        .values_list("minute")
        .annotate(n=Count("id"))
    )
    slots = (first + timedelta(minutes=i) for i in range(minutes))
    return [{"minute": iso(m), "count": counts.get(m, 0)} for m in slots]
