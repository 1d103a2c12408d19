"""The data of ``bench/search.py`` and the worker's ``fill`` mode (imported by
``bench/search_worker.py``, which sets Django up first).

The words (a Zipf vocabulary of chat words, names and made-up words), the
message texts drawn from it, the two callers, the message table's sizes, and
``fill``: users, BAMs and memberships with the ORM, then the messages in
set-based SQL: their text is generated here and copied into a staging table,
and one ``INSERT … SELECT`` numbers them per BAM and stores them, so the
application's own trigger fills ``search_vector`` exactly as it does for every
write. The table's plain indexes (the GIN index among them) are dropped for the
insert and re-created from their own definitions.
"""

from __future__ import annotations

import io
import random
import sys
import time
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from accounts.models import User, username_key
from messaging import search_index
from messaging.models import Bam, Membership, Message

HEAVY = "searcher"  # takes part in many BAMs
LIGHT = "casual"  # in a few
MESSAGE = Message._meta.db_table
SEED = 22

# The most frequent words of chat text, most frequent first (letters only: the
# tokenizers split at anything else).
COMMON = (
    "i you the to a it and is that me my in we so be on for just not no "
    "do have this what but are can yes ok of was like know get all with "
    "will at if go your now good too think up out see time got one lol "
    "about there how want when need then here going some did come they "
    "well back today really from he she sure thanks right tomorrow work "
    "let still yeah would could home call said night later day make them "
    "much more been why where who also done never tell take new only "
    "meeting lunch morning week maybe again after before because something "
    "nothing already soon last first next people thing way hey hi sorry "
    "please love great nice fine bad happy tonight weekend office email"
).split()
NAMES = (
    "alice bob carol dave erin frank grace heidi ivan judy mallory nina oscar "
    "peggy rupert sybil trent victor walter xavier yvonne zoe amir bea chen "
    "dara emeka fatima goran hana ines jonas kenji lea marta noor olga paulo "
    "quinn rosa sami tomas uma vera wen yusuf zara"
).split()
SYLLABLES = (
    "ba be bi bo bu ka ke ki ko ku la le li lo lu ma me mi mo mu na ne ni no nu "
    "pa pe pi po pu ra re ri ro ru sa se si so su ta te ti to tu va ve vi vo vu "
    "da de di do du ga ge go gu ha he ho za ze zo"
).split()


def log(*parts) -> None:
    print("[search-worker]", *parts, file=sys.stderr, flush=True)


def vocabulary(size: int) -> list[str]:
    """``size`` distinct words, most frequent first: chat words, then names
    spread over the middle ranks, then made-up words (2-4 syllables)."""
    rng = random.Random(SEED)
    words = list(COMMON)
    taken = set(words) | set(NAMES)
    made: list[str] = []
    while len(made) < size - len(COMMON) - len(NAMES):
        w = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        if w not in taken:
            taken.add(w)
            made.append(w)
    words += made
    for k, name in enumerate(NAMES):  # ranks ~150 to ~1,000
        words.insert(150 + k * 18, name)
    return words[:size]


class Texts:
    """Message texts: 3-30 words (short ones more often), each word drawn with
    probability proportional to 1 / rank (Zipf)."""

    def __init__(self, vocab: list[str], seed: int) -> None:
        self.vocab = vocab
        self.rng = random.Random(seed)
        total, cum = 0.0, []
        for r in range(1, len(vocab) + 1):
            total += 1 / r
            cum.append(total)
        self.cum = cum

    def next(self) -> str:
        n = 3 + int(self.rng.random() ** 2 * 28)
        return " ".join(self.rng.choices(self.vocab, cum_weights=self.cum, k=n))


def sizes() -> dict:
    with connection.cursor() as c:
        c.execute(
            "SELECT pg_table_size(%s), pg_indexes_size(%s), pg_total_relation_size(%s)",
            [MESSAGE] * 3,
        )
        table, indexes, total = c.fetchone()
        c.execute(
            "SELECT pg_relation_size(indexrelid::regclass) FROM pg_index "
            "WHERE indexrelid = to_regclass(%s)",
            [search_index.GIN_INDEX],
        )
        gin = c.fetchone()
        c.execute(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = %s AND column_name = %s",
            [MESSAGE, search_index.VECTOR_COLUMN],
        )
        has_vector = c.fetchone()[0] == 1
        vector = None
        if has_vector:
            c.execute(
                f"SELECT sum(pg_column_size({search_index.VECTOR_COLUMN})) "
                f"FROM {MESSAGE}"
            )
            vector = c.fetchone()[0]
    return {
        "tableBytes": table,
        "indexesBytes": indexes,
        "totalBytes": total,
        "ginBytes": gin[0] if gin else None,
        "vectorBytes": vector,
    }


# --- fill ------------------------------------------------------------------------


def fill(args: dict) -> dict:
    t0 = time.monotonic()
    n_messages, n_users, n_bams = args["messages"], args["users"], args["bams"]
    heavy_every, light_bams = args["heavyEvery"], args["lightBams"]
    rng = random.Random(SEED)
    vocab = vocabulary(args["vocabulary"])
    stamp = timezone.now()
    # Users: the two callers first, then people named after the vocabulary's
    # names (the password is unusable: the bench never logs in).
    names = [HEAVY, LIGHT] + [f"{NAMES[i % len(NAMES)]}{i}" for i in range(n_users - 2)]
    User.objects.bulk_create(
        [
            User(
                username=n,
                username_key=username_key(n),
                password="!",
                date_joined=stamp,
            )
            for n in names
        ],
        batch_size=5000,
    )
    users = list(User.objects.order_by("pk").values_list("pk", flat=True))
    heavy, light, others = users[0], users[1], users[2:]
    # BAMs: half are two-person conversations, most others small groups, some
    # large. BAM k gets a share of the messages that falls with k (busy BAMs
    # first); the heavy caller is in every ``heavy_every``th, busy ones included.
    Bam.objects.bulk_create(
        [Bam(title=f"bam {k}", owner_id=rng.choice(others)) for k in range(n_bams)],
        batch_size=5000,
    )
    bams = list(Bam.objects.order_by("pk").values_list("pk", "owner_id"))
    members: dict[int, list[int]] = {}
    light_set = set(rng.sample(range(n_bams), light_bams))
    rows = []
    for k, (bam_id, owner) in enumerate(bams):
        roll = rng.random()
        size = (
            2
            if roll < 0.5
            else rng.randint(3, 10)
            if roll < 0.85
            else (rng.randint(11, 60))
        )
        group = {owner, *rng.sample(others, size - 1)}
        if k % heavy_every == 0:
            group.add(heavy)
        if k in light_set:
            group.add(light)
        members[bam_id] = sorted(group)
        rows += [
            Membership(
                bam_id=bam_id,
                user_id=u,
                role=Membership.Role.OWNER if u == owner else Membership.Role.MEMBER,
            )
            for u in members[bam_id]
        ]
    Membership.objects.bulk_create(rows, batch_size=10000)
    log(
        f"{len(users)} users, {len(bams)} BAMs, {len(rows)} memberships "
        f"in {time.monotonic() - t0:.1f}s"
    )

    # Messages: text generated here, copied to a staging table, then one
    # INSERT … SELECT with the application's trigger in place.
    t1 = time.monotonic()
    texts = Texts(vocab, SEED + 1)
    bam_ids = [b for b, _ in bams]
    with connection.cursor() as c:
        c.execute(
            "CREATE UNLOGGED TABLE bench_stage (i int, bam_id bigint, "
            "sender_id bigint, deleted boolean, content text)"
        )
        raw = c.cursor  # psycopg's own cursor, for COPY
        with raw.copy("COPY bench_stage FROM STDIN") as copy:
            buf = io.StringIO()
            for i in range(n_messages):
                bam_id = bam_ids[int(n_bams * rng.random() ** 2)]
                sender = rng.choice(members[bam_id])
                deleted = "t" if rng.random() < 0.01 else "f"
                buf.write(f"{i}\t{bam_id}\t{sender}\t{deleted}\t{texts.next()}\n")
                if i % 20000 == 19999:
                    copy.write(buf.getvalue())
                    buf = io.StringIO()
            copy.write(buf.getvalue())
    generated = time.monotonic() - t1
    log(f"{n_messages} texts generated and copied in {generated:.1f}s")

    t2 = time.monotonic()
    with connection.cursor() as c:
        c.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint "
            "WHERE conrelid = %s::regclass)",
            [MESSAGE, MESSAGE],
        )
        plain_indexes = c.fetchall()
        if search_index.GIN_INDEX not in {n for n, _ in plain_indexes}:
            raise SystemExit(f"no {search_index.GIN_INDEX} on {MESSAGE}: not migrated?")
        for name, _ in plain_indexes:
            c.execute(f'DROP INDEX "{name}"')
        c.execute("SET work_mem = '256MB'")
        c.execute("SET maintenance_work_mem = '512MB'")
        span = timedelta(days=365)
        first = stamp - span
        c.execute(
            f"INSERT INTO {MESSAGE} (bam_id, sender_id, content, type, seq, "
            f"created_at, deleted_at) "
            f"SELECT bam_id, sender_id, CASE WHEN deleted THEN '' ELSE content END, "
            f"'text', row_number() OVER (PARTITION BY bam_id ORDER BY i), "
            f"%s + i * %s, CASE WHEN deleted THEN %s + i * %s END "
            f"FROM bench_stage ORDER BY i",
            [first, span / n_messages, first, span / n_messages],
        )
        inserted = time.monotonic() - t2
        log(f"inserted in {inserted:.1f}s; re-creating {len(plain_indexes)} indexes")
        t3 = time.monotonic()
        index_seconds = {}
        for name, definition in plain_indexes:
            ti = time.monotonic()
            c.execute(definition)
            index_seconds[name] = round(time.monotonic() - ti, 1)
        indexed = time.monotonic() - t3
        c.execute("DROP TABLE bench_stage")
        c.execute(
            f"UPDATE {Bam._meta.db_table} b SET last_seq = m.top "
            f"FROM (SELECT bam_id, max(seq) AS top FROM {MESSAGE} GROUP BY bam_id) m "
            f"WHERE b.id = m.bam_id"
        )
        t4 = time.monotonic()
        c.execute(f"VACUUM (ANALYZE) {MESSAGE}")
        c.execute("ANALYZE")
        vacuumed = time.monotonic() - t4
        # The trigger filled every vector exactly as the write path does.
        vector = search_index.vector_sql(settings.SEARCH["CONFIG"], "content")
        c.execute(
            f"SELECT count(*), count(*) FILTER (WHERE "
            f"{search_index.VECTOR_COLUMN} IS DISTINCT FROM {vector}) "
            f"FROM {MESSAGE}"
        )
        count, differing = c.fetchone()
        c.execute(
            f"SELECT count(*) FROM {MESSAGE} m JOIN {Membership._meta.db_table} p "
            f"ON p.bam_id = m.bam_id WHERE p.user_id = %s",
            [heavy],
        )
        heavy_messages = c.fetchone()[0]
        c.execute(
            f"SELECT count(*) FROM {MESSAGE} m JOIN {Membership._meta.db_table} p "
            f"ON p.bam_id = m.bam_id WHERE p.user_id = %s",
            [light],
        )
        light_messages = c.fetchone()[0]
    if differing:
        raise SystemExit(f"{differing} stored vectors differ from the trigger's")
    log(f"indexes in {indexed:.1f}s, vacuum + analyze in {vacuumed:.1f}s")
    words = sum(len(texts.next().split()) for _ in range(2000)) / 2000
    return {
        "messages": count,
        "users": len(users),
        "bams": len(bams),
        "memberships": len(rows),
        "vocabulary": len(vocab),
        "meanWords": round(words, 1),
        "heavyBams": sum(1 for g in members.values() if heavy in g),
        "lightBams": sum(1 for g in members.values() if light in g),
        "heavyMessages": heavy_messages,
        "lightMessages": light_messages,
        "seconds": {
            "accounts": round(t1 - t0, 1),
            "texts": round(generated, 1),
            "insert": round(inserted, 1),
            "indexes": round(indexed, 1),
            "indexEach": index_seconds,
            "vacuum": round(vacuumed, 1),
            "total": round(time.monotonic() - t0, 1),
        },
        "sizes": sizes(),
    }
