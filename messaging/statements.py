"""The statements of the message hot path, written once as SQL.

A new message is the one write that runs for every chat line, so it skips the
ORM's query building (which cost more than the database itself): these
functions are plain parameterised statements that PostgreSQL and SQLite (3.35+,
for ``RETURNING``) both run. They hold no rule: ``messaging.services`` decides
what may be written; ``tests/messaging/test_statements.py`` compares each with
the ORM query it replaces.
"""

from collections import Counter
from functools import cache, lru_cache

from django.db import connection

from bamchat.sql import column, db_value, table
from messaging.models import Bam, Membership, Message

# BAMs whose audience a process remembers (the least recently written forgotten).
AUDIENCE_CACHE_SIZE = 4096
# Ids in one ``IN (...)`` list at most: well under SQLite's 32,766 variables and
# small enough for PostgreSQL to plan as an index lookup per id.
IN_LIST_SIZE = 500


@cache
def _sql(vendor: str) -> dict[str, str]:
    # Built once per database vendor from the models' own table and column names.
    bam, member, message = table(Bam), table(Membership), table(Message)
    b = {
        f: column(Bam, f) for f in ("id", "last_seq", "updated_at", "audience_version")
    }
    m = {f: column(Membership, f) for f in ("bam", "user")}
    columns = [
        "bam",
        "sender",
        "to_user",
        "content",
        "type",
        "temp_id",
        "seq",
        "created_at",
        "reply_to",
    ]
    insert_columns = ", ".join(column(Message, f) for f in columns)
    placeholders = ", ".join(["%s"] * len(columns))
    # In a SELECT list a parameter has no column to take its type from.
    typed_placeholders = ", ".join(
        f"taken.{b['last_seq']}"
        if f == "seq"
        else f"CAST(%s AS {Message._meta.get_field(f).db_type(connection)})"
        for f in columns
    )
    # The membership check, the BAM's row lock (PostgreSQL) and its next seq
    # in one statement; no row back means "not a participant".
    seq_take = (
        f"UPDATE {bam} SET {b['last_seq']} = {b['last_seq']} + 1, "
        f"{b['updated_at']} = %s WHERE {b['id']} = %s AND EXISTS ("
        f"SELECT 1 FROM {member} WHERE {m['bam']} = %s AND {m['user']} = %s) "
        f"RETURNING {b['last_seq']}, {b['audience_version']}"
    )
    # A batch of plain messages (no recipient, reply or attachment): each BAM
    # takes its seqs once, every row goes in one INSERT that checks membership.
    batch = ["bam", "sender", "content", "type", "temp_id", "seq", "created_at"]
    batch_columns = ", ".join(column(Message, f) for f in batch)
    batch_rows_member = (
        f"WHERE EXISTS (SELECT 1 FROM {member} WHERE {m['bam']} = given.{{bam}} "
        f"AND {m['user']} = given.{{sender}}) ON CONFLICT DO NOTHING "
        f"RETURNING {column(Message, 'id')}, {column(Message, 'bam')}, "
        f"{column(Message, 'seq')}"
    )
    if connection.vendor == "postgresql":
        # Arrays keep one statement text (prepared once) for any batch size.
        arrays = ", ".join(
            f"CAST(%s AS {Message._meta.get_field(f).db_type(connection)}[])"
            for f in batch
        )
        bam_id_type = Bam._meta.pk.rel_db_type(connection)
        batch_sql = {
            # Row locks taken in id order: two processes never deadlock.
            "bams_lock": (
                f"SELECT {b['id']} FROM {bam} WHERE {b['id']} = ANY(%s) "
                f"ORDER BY {b['id']} FOR UPDATE"
            ),
            "seqs_take": (
                f"UPDATE {bam} SET {b['last_seq']} = {bam}.{b['last_seq']} + "
                f"taking.n, {b['updated_at']} = %s FROM unnest("
                f"CAST(%s AS {bam_id_type}[]), CAST(%s AS integer[])) "
                f"AS taking(id, n) WHERE {bam}.{b['id']} = taking.id "
                f"RETURNING {bam}.{b['id']}, {bam}.{b['last_seq']}, "
                f"{bam}.{b['audience_version']}"
            ),
            "messages_insert": (
                f"INSERT INTO {message} ({batch_columns}) SELECT * FROM "
                f"unnest({arrays}) AS given({', '.join(batch)}) "
                + batch_rows_member.format(bam="bam", sender="sender")
            ),
        }
    else:
        # Completed per call: one CASE branch per BAM, one VALUES row a message.
        batch_sql = {
            "seqs_take": (
                f"UPDATE {bam} SET {b['last_seq']} = {b['last_seq']} + "
                f"CASE {b['id']} {{cases}} END, {b['updated_at']} = %s "
                f"WHERE {b['id']} IN ({{ids}}) "
                f"RETURNING {b['id']}, {b['last_seq']}, {b['audience_version']}"
            ),
            "messages_insert": (
                f"INSERT INTO {message} ({batch_columns}) SELECT * FROM "
                f"(VALUES {{rows}}) AS given "
                + batch_rows_member.format(bam="column1", sender="column2")
            ),
        }
    return {
        **{f"batch_{name}": text for name, text in batch_sql.items()},
        "seq_take": seq_take,
        "audience_changed": (
            f"UPDATE {bam} SET {b['audience_version']} = {b['audience_version']} + 1 "
            f"WHERE {b['id']} IN "
            f"(SELECT {m['bam']} FROM {member} WHERE {m['user']} = %s)"
        ),
        "audience_changed_bam": (
            f"UPDATE {bam} SET {b['audience_version']} = {b['audience_version']} + 1 "
            f"WHERE {b['id']} = %s"
        ),
        "seq_give_back": (
            f"UPDATE {bam} SET {b['last_seq']} = {b['last_seq']} - 1 "
            f"WHERE {b['id']} = %s"
        ),
        # A repeated (BAM, sender, tempId) conflicts and inserts nothing.
        "message_insert": (
            f"INSERT INTO {message} ({insert_columns}) VALUES ({placeholders}) "
            f"ON CONFLICT DO NOTHING RETURNING {column(Message, 'id')}"
        ),
        "participants": (f"SELECT {m['user']} FROM {member} WHERE {m['bam']} = %s"),
        # PostgreSQL: seq_take and message_insert in one round trip. No row:
        # not a participant; a row without an id: a repeated tempId (the seq
        # was taken and must be given back).
        "message_insert_with_seq": (
            f"WITH taken AS ({seq_take}), "
            f"stored AS (INSERT INTO {message} ({insert_columns}) "
            f"SELECT {typed_placeholders} FROM taken "
            f"ON CONFLICT DO NOTHING RETURNING {column(Message, 'id')}) "
            f"SELECT taken.{b['last_seq']}, taken.{b['audience_version']}, "
            f"(SELECT {column(Message, 'id')} FROM stored) FROM taken"
        ),
        # Completed per call with the IN list's placeholders.
        "co_participants_of": (
            f"SELECT DISTINCT mine.{m['user']}, other.{m['user']} FROM {member} mine "
            f"JOIN {member} other ON other.{m['bam']} = mine.{m['bam']} "
            f"WHERE mine.{m['user']} IN "
        ),
        # Completed per call with two IN lists: BAMs, then users.
        "last_seqs_for_participants": (
            f"SELECT {member}.{m['bam']}, {member}.{m['user']}, {bam}.{b['last_seq']} "
            f"FROM {bam} JOIN {member} ON {member}.{m['bam']} = {bam}.{b['id']} "
            f"WHERE {bam}.{b['id']} IN (%s) AND {member}.{m['user']} IN (%s)"
        ),
    }


def sql(name: str) -> str:
    return _sql(connection.vendor)[name]


def seq_take(*, bam_id: int, user_id: int, now) -> tuple[int, int] | None:
    """The BAM's next seq and its audience version if the user is a participant
    (the BAM's row stays locked until commit), else None and nothing written."""
    with connection.cursor() as cursor:
        cursor.execute(
            sql("seq_take"),
            [db_value(Bam, "updated_at", now), bam_id, bam_id, user_id],
        )
        row = cursor.fetchone()
    return None if row is None else (row[0], row[1])


def audience_changed(*, bam_id: int | None = None, user_id: int | None = None) -> None:
    """Bump the audience version of one BAM, or of every BAM of a user."""
    with connection.cursor() as cursor:
        if bam_id is not None:
            cursor.execute(sql("audience_changed_bam"), [bam_id])
        if user_id is not None:
            cursor.execute(sql("audience_changed"), [user_id])


def seq_give_back(*, bam_id: int) -> None:
    """Undo ``seq_take`` in the same transaction (the seq was not used)."""
    with connection.cursor() as cursor:
        cursor.execute(sql("seq_give_back"), [bam_id])


def message_row_insert(message: Message) -> bool:
    """Insert the message's row and set its ``pk``; False (nothing written) when
    its (BAM, sender, tempId) is already stored."""
    with connection.cursor() as cursor:
        cursor.execute(sql("message_insert"), _row_values(message))
        row = cursor.fetchone()
    if row is None:
        return False
    _stored(message, row[0])
    return True


def _row_values(message: Message) -> list:
    return [
        message.bam_id,
        message.sender_id,
        message.to_user_id,
        message.content,
        message.type,
        message.temp_id,
        message.seq,
        db_value(Message, "created_at", message.created_at),
        message.reply_to_id,
    ]


def _stored(message: Message, pk: int) -> None:
    message.pk = pk
    message._state.adding = False
    message._state.db = connection.alias


def message_insert_with_seq(message: Message, *, user_id: int, now) -> str:
    """Take the BAM's next seq for the message and insert it (one round trip on
    PostgreSQL, two elsewhere): ``"stored"`` (``pk``, ``seq`` and
    ``audience_version`` set), ``"outsider"`` (the user is not a participant;
    nothing written) or ``"repeated"`` (its tempId is stored already; the seq
    was taken: give it back)."""
    if connection.vendor != "postgresql":
        taken = seq_take(bam_id=message.bam_id, user_id=user_id, now=now)
        if taken is None:
            return "outsider"
        message.seq, message.audience_version = taken
        return "stored" if message_row_insert(message) else "repeated"
    row = _row_values(message)  # its seq (index 6) comes from the UPDATE
    values = [db_value(Bam, "updated_at", now), message.bam_id, message.bam_id]
    values += [user_id, *row[:6], *row[7:]]
    with connection.cursor() as cursor:
        cursor.execute(sql("message_insert_with_seq"), values)
        got = cursor.fetchone()
    if got is None:
        return "outsider"
    message.seq, message.audience_version, pk = got
    if pk is None:
        return "repeated"
    _stored(message, pk)
    return "stored"


def messages_insert(messages: list[Message], *, now) -> bool:
    """Store plain messages (no recipient, reply or attachment) of any BAMs and
    senders in two statements (three on PostgreSQL, which first locks the BAMs
    in id order), whatever their number. Each BAM's messages take its next
    seqs in the order given. True with every message's ``pk``, ``seq`` and
    ``audience_version`` set; False when a sender is not a participant or a
    (BAM, sender, tempId) is stored already or given twice: part of the batch
    was written, and the caller must roll it back."""
    wanted = Counter(message.bam_id for message in messages)
    bam_ids = sorted(wanted)
    updated_at = db_value(Bam, "updated_at", now)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(sql("batch_bams_lock"), [bam_ids])
            cursor.execute(
                sql("batch_seqs_take"),
                [updated_at, bam_ids, [wanted[bam_id] for bam_id in bam_ids]],
            )
        else:
            cases = " ".join(["WHEN %s THEN %s"] * len(bam_ids))
            ids = ", ".join(["%s"] * len(bam_ids))
            params = [v for bam_id in bam_ids for v in (bam_id, wanted[bam_id])]
            cursor.execute(
                sql("batch_seqs_take").format(cases=cases, ids=ids),
                [*params, updated_at, *bam_ids],
            )
        taken = {row[0]: row[1:] for row in cursor.fetchall()}
        if len(taken) != len(bam_ids):  # a BAM that does not exist
            return False
        next_seq = {bam_id: taken[bam_id][0] - wanted[bam_id] + 1 for bam_id in taken}
        for message in messages:
            message.seq = next_seq[message.bam_id]
            message.audience_version = taken[message.bam_id][1]
            next_seq[message.bam_id] += 1
        rows = [_batch_row(message) for message in messages]
        if connection.vendor == "postgresql":
            columns = [list(values) for values in zip(*rows, strict=True)]
            cursor.execute(sql("batch_messages_insert"), columns)
        else:
            values = ", ".join([f"({', '.join(['%s'] * len(rows[0]))})"] * len(rows))
            cursor.execute(
                sql("batch_messages_insert").format(rows=values),
                [v for row in rows for v in row],
            )
        stored = {(bam_id, seq): pk for pk, bam_id, seq in cursor.fetchall()}
    if len(stored) != len(messages):
        return False
    for message in messages:
        _stored(message, stored[(message.bam_id, message.seq)])
    return True


def _batch_row(message: Message) -> tuple:
    return (
        message.bam_id,
        message.sender_id,
        message.content,
        message.type,
        message.temp_id,
        message.seq,
        db_value(Message, "created_at", message.created_at),
    )


def participant_ids(*, bam_id: int, audience_version: int | None = None) -> tuple:
    """Ids of every participant of the BAM. With the audience version read by
    the message write, answered from this process's cache when it has it."""
    if audience_version is None:
        return _participant_ids(bam_id)
    return _participant_ids_at(bam_id, audience_version)


def _participant_ids(bam_id: int) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(sql("participants"), [bam_id])
        return tuple(row[0] for row in cursor.fetchall())


@lru_cache(maxsize=AUDIENCE_CACHE_SIZE)
def _participant_ids_at(bam_id: int, audience_version: int) -> tuple:
    return _participant_ids(bam_id)


def last_seq_for_participant(*, bam_id: int, user_id: int) -> int | None:
    """The BAM's last seq if the user is a participant, else None."""
    return last_seqs_for_participants(pairs=[(bam_id, user_id)])[0]


def last_seqs_for_participants(*, pairs) -> list[int | None]:
    """``last_seq_for_participant`` for many ``(bam_id, user_id)`` pairs in one
    statement per ``IN_LIST_SIZE`` pairs: every join reads it, and a reconnect
    storm brings thousands of joins at once."""
    pairs = [(int(b), int(u)) for b, u in pairs]
    found: dict[tuple[int, int], int] = {}
    with connection.cursor() as cursor:
        for start in range(0, len(pairs), IN_LIST_SIZE):
            chunk = pairs[start : start + IN_LIST_SIZE]
            bams = sorted({b for b, _ in chunk})
            users = sorted({u for _, u in chunk})
            query = sql("last_seqs_for_participants") % (
                ", ".join(["%s"] * len(bams)),
                ", ".join(["%s"] * len(users)),
            )
            cursor.execute(query, [*bams, *users])
            for bam_id, user_id, last_seq in cursor.fetchall():
                found[(bam_id, user_id)] = last_seq
    return [found.get(pair) for pair in pairs]


def co_participants_of(*, user_ids) -> dict[int, list[int]]:
    """For each user, the sorted ids of every user who shares a BAM with them (the
    user included): who hears of their presence. One statement per
    ``IN_LIST_SIZE`` users, so a storm's announcements cost a few queries."""
    found: dict[int, set[int]] = {int(u): {int(u)} for u in user_ids}
    wanted = sorted(found)
    with connection.cursor() as cursor:
        for start in range(0, len(wanted), IN_LIST_SIZE):
            chunk = wanted[start : start + IN_LIST_SIZE]
            cursor.execute(
                sql("co_participants_of") + f"({', '.join(['%s'] * len(chunk))})",
                chunk,
            )
            for user_id, other_id in cursor.fetchall():
                found[user_id].add(other_id)
    return {user_id: sorted(ids) for user_id, ids in found.items()}
