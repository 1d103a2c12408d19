"""Message search: one selector holds the permission rule; the database parts
only translate the parsed query (``messaging.search_query``); snippets are
built here from the found messages, the same on every database.

A user finds only live messages of BAMs they take part in now; the index is
updated by the write itself, so deletions and edits show at once. Every search
runs under a deadline (``SEARCH_TIMEOUT_MS``): past it the search is refused.
"""

import html
import time
from contextlib import contextmanager

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL
from django.utils.dateparse import parse_datetime

from bamchat.errors import Invalid, NotFound, invalid
from messaging.models import Membership, Message
from messaging.search_index import FTS_TABLE, VECTOR_COLUMN
from messaging.search_query import WORD, SearchQuery, parse_query
from messaging.selectors import bam_get_for_participant, message_list_query, parse_id
from messaging.serializers import message_payload

PAGE_SIZE = 50
# A snippet shows this much of a message, from a little before its first match.
SNIPPET_CHARS = 200
SNIPPET_LEAD_CHARS = 60
# SQLite checks the deadline every this many virtual-machine steps.
SQLITE_CHECK_STEPS = 100


def _matches(query: SearchQuery) -> RawSQL:
    table = Message._meta.db_table
    if connection.vendor == "postgresql":
        return RawSQL(
            f'"{table}"."{VECTOR_COLUMN}" @@ to_tsquery(%s::regconfig, %s)',
            [settings.SEARCH["CONFIG"], query.postgres()],
            output_field=BooleanField(),
        )
    return RawSQL(
        f'"{table}"."id" IN (SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s)',
        [query.fts5()],
        output_field=BooleanField(),
    )


def snippet_html(content: str, query: SearchQuery) -> str:
    """Up to ``SNIPPET_CHARS`` of the content around its first matched word, as
    plain text with ``<mark>`` around each matched word: the text is escaped,
    only the marks are tags. Built here, not by the database, so both databases
    give the same snippet."""
    words = {w for group in query.groups for i in group for w in i.words}
    prefixes = tuple(i.words[-1] for g in query.groups for i in g if i.prefix)
    hits = [
        m
        for m in WORD.finditer(content)
        if (w := m.group().lower()) in words or (prefixes and w.startswith(prefixes))
    ]
    start = max(0, hits[0].start() - SNIPPET_LEAD_CHARS) if hits else 0
    end = min(len(content), start + SNIPPET_CHARS)
    out, at = ["…" if start else ""], start
    for m in hits:
        if m.end() > end:
            break
        out += [html.escape(content[at : m.start()], quote=False), "<mark>"]
        out += [html.escape(m.group(), quote=False), "</mark>"]
        at = m.end()
    out += [
        html.escape(content[at:end], quote=False),
        "…" if end < len(content) else "",
    ]
    return "".join(out)


@contextmanager
def _deadline():
    """Run the search under ``SEARCH_TIMEOUT_MS``; past it, Invalid on ``q``."""
    limit_ms = settings.SEARCH["TIMEOUT_MS"]
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    # set_config, not SET: a SET takes no bound parameter.
                    cursor.execute(
                        "SELECT set_config('statement_timeout', %s, true)",
                        [str(limit_ms)],
                    )
                yield
                return
            connection.ensure_connection()
            raw = connection.connection
            ends = time.monotonic() + limit_ms / 1000
            raw.set_progress_handler(
                lambda: int(time.monotonic() > ends), SQLITE_CHECK_STEPS
            )
            try:
                yield
            finally:
                raw.set_progress_handler(None, 0)
    except OperationalError as exc:
        raise invalid("q", "This search takes too long; make it narrower.") from exc


def _when(raw, field: str):
    if raw in (None, ""):
        return None
    value = parse_datetime(raw) if isinstance(raw, str) else None
    if value is None or value.tzinfo is None:
        raise invalid(field, f"{field} must be an ISO 8601 time with a zone.")
    return value


def message_search(
    *, user, q, bam_id=None, from_user_id=None, before=None, after=None, cursor=None
) -> tuple[list[dict], str | None]:
    """``[{bamId, message, snippet}]``, newest first, and the next page's cursor
    (or None): live messages matching ``q`` in BAMs the user takes part in now.
    Invalid on a bad query or filter; NotFound for another BAM's id."""
    query = parse_query(q)
    messages = Message.objects.filter(
        bam__in=Membership.objects.filter(user=user).values("bam"),
        deleted_at__isnull=True,
    )
    if bam_id not in (None, ""):
        messages = messages.filter(
            bam=bam_get_for_participant(bam_id=bam_id, user=user)
        )
    if from_user_id not in (None, ""):
        try:
            messages = messages.filter(sender_id=parse_id(from_user_id, what="user"))
        except NotFound as exc:
            raise invalid("from", "from must be a user id.") from exc
    if (moment := _when(before, "before")) is not None:
        messages = messages.filter(created_at__lt=moment)
    if (moment := _when(after, "after")) is not None:
        messages = messages.filter(created_at__gt=moment)
    if cursor not in (None, ""):
        try:
            messages = messages.filter(pk__lt=parse_id(cursor, what="cursor"))
        except NotFound:
            raise Invalid("Invalid cursor.", fields={"cursor": ["Invalid."]}) from None
    with _deadline():
        ids = list(
            messages.filter(_matches(query))
            .order_by("-pk")
            .values_list("pk", flat=True)[: PAGE_SIZE + 1]
        )
        page = ids[:PAGE_SIZE]
        found = {m.pk: m for m in message_list_query().filter(pk__in=page)}
    results = [
        {
            "bamId": str(found[pk].bam_id),
            "message": message_payload(found[pk]),
            "snippet": snippet_html(found[pk].content, query),
        }
        for pk in page
        if pk in found
    ]
    return results, (str(page[-1]) if len(ids) > PAGE_SIZE else None)
