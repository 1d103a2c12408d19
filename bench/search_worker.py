"""The server side of ``bench/search.py``: runs under the project's virtualenv
with the app's settings (``DATABASE_URL`` names the bench's own database).

    python bench/search_worker.py fill   '{"messages": ..., ...}'
    python bench/search_worker.py search '{"repeats": ..., ...}'
    python bench/search_worker.py insert '{"singles": ..., ...}'

Each mode prints one ``RESULT {...}`` line on stdout (progress on stderr).

``fill`` makes users, BAMs and memberships with the ORM, then the messages in
set-based SQL: their text is generated here (a Zipf vocabulary) and copied
into a staging table, and one ``INSERT … SELECT`` numbers them per BAM and
stores them, so the application's own trigger fills ``search_vector`` exactly
as it does for every write. The table's plain indexes (the GIN index among
them) are dropped for the insert and re-created from their own definitions.

``search`` times ``messaging.search.message_search`` (what ``GET
/search/messages`` calls) for each kind of query; ``insert`` times the write
path (``messaging.services.message_create`` / ``messages_create``).
"""

from __future__ import annotations

import io
import json
import math
import os
import random
import statistics
import sys
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bamchat.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import User, username_key  # noqa: E402
from bamchat.errors import Invalid  # noqa: E402
from messaging import search_index  # noqa: E402
from messaging.models import Bam, Membership, Message  # noqa: E402
from messaging.search import message_search, snippet_html  # noqa: E402
from messaging.search_query import parse_query  # noqa: E402
from messaging.services import message_create, message_draft, messages_create  # noqa: E402

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


def result(payload: dict) -> None:
    print("RESULT " + json.dumps(payload), flush=True)


def quantile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (q in 0..1)."""
    s = sorted(values)
    if len(s) == 1:
        return s[0]
    at = q * (len(s) - 1)
    lo = math.floor(at)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (at - lo)


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


# --- search ----------------------------------------------------------------------


def _bands(vocab: list[str]):
    common = [w for w in vocab[:50] if len(w) >= 2]
    mid = vocab[100:1000]
    rare = vocab[1500:]
    return common, mid, rare


def _stored_texts(user_id: int, n: int) -> list[str]:
    """Contents of ``n`` random live messages the user can see."""
    with connection.cursor() as c:
        c.execute("SELECT setseed(0.22)")  # the same phrases every run
        c.execute(
            f"SELECT m.content FROM {MESSAGE} m WHERE m.deleted_at IS NULL AND "
            f"m.bam_id IN (SELECT bam_id FROM {Membership._meta.db_table} "
            f"WHERE user_id = %s) ORDER BY random() LIMIT %s",
            [user_id, n],
        )
        return [r[0] for r in c.fetchall()]


def query_sets(vocab: list[str], per_row: int, texts: list[str]) -> dict:
    """Row name -> queries, drawn from the vocabulary's frequency bands; the
    phrases are word pairs and triples cut from stored messages."""
    rng = random.Random(SEED + 2)
    common, mid, rare = _bands(vocab)
    rank = {w: r for r, w in enumerate(vocab)}

    def phrases(pred) -> list[str]:
        found: list[str] = []
        for text in texts:
            words = text.split()
            length = rng.choice((2, 3))
            starts = list(range(len(words) - length + 1))
            rng.shuffle(starts)
            for s in starts:
                cut = words[s : s + length]
                if pred(cut):
                    found.append('"' + " ".join(cut) + '"')
                    break
            if len(found) == per_row:
                break
        return found

    absent = [
        "".join(rng.choice(SYLLABLES) for _ in range(5)) + "x" for _ in range(per_row)
    ]
    return {
        "1 word, common": [rng.choice(common) for _ in range(per_row)],
        "1 word, mid": [rng.choice(mid) for _ in range(per_row)],
        "1 word, rare": [rng.choice(rare) for _ in range(per_row)],
        "1 word, no match": absent,
        "2 words, common": [" ".join(rng.sample(common, 2)) for _ in range(per_row)],
        "2 words, common + rare": [
            f"{rng.choice(common)} {rng.choice(rare)}" for _ in range(per_row)
        ],
        "3 words, common": [" ".join(rng.sample(common, 3)) for _ in range(per_row)],
        "3 words, common + mid + rare": [
            f"{rng.choice(common)} {rng.choice(mid)} {rng.choice(rare)}"
            for _ in range(per_row)
        ],
        "phrase, common words": phrases(lambda ws: all(rank[w] < 50 for w in ws)),
        "phrase, with a rare word": phrases(
            lambda ws: any(rank[w] >= 1500 for w in ws)
        ),
    }


@contextmanager
def match_timer(sink: list):
    """Time the statement that matches the index (the selector's id query)."""

    def wrapper(execute, sql, params, many, context):
        if "@@ to_tsquery" not in sql:
            return execute(sql, params, many, context)
        t = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            sink.append((time.perf_counter() - t, sql, params))

    with connection.execute_wrapper(wrapper):
        yield


def _plan_shape(node: dict) -> str:
    name = node["Node Type"]
    if "Index Name" in node:
        name += f" {node['Index Name']}"
    if node["Node Type"] == "Index Scan" and node.get("Scan Direction") == "Backward":
        name = name.replace("Index Scan", "Index Scan Backward")
    children = [_plan_shape(p) for p in node.get("Plans", [])]
    return name + (" (" + ", ".join(children) + ")" if children else "")


def explain(sql: str, params) -> dict:
    with transaction.atomic(), connection.cursor() as c:
        c.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", params)
        plan = c.fetchone()[0]
        if isinstance(plan, str):
            plan = json.loads(plan)
        transaction.set_rollback(True)
    top = plan[0]
    return {
        "shape": _plan_shape(top["Plan"]),
        "ms": round(top["Execution Time"], 1),
        "sharedHit": top["Plan"].get("Shared Hit Blocks"),
        "sharedRead": top["Plan"].get("Shared Read Blocks"),
    }


def count_matches(user, q: str) -> int:
    """Every message the user would find (all pages), timed out past 60 s."""
    from messaging import search as search_module

    query = parse_query(q)
    with transaction.atomic(), connection.cursor() as c:
        c.execute("SET LOCAL statement_timeout = 60000")
        qs = Message.objects.filter(
            bam__in=Membership.objects.filter(user=user).values("bam"),
            deleted_at__isnull=True,
        ).filter(search_module._matches(query))
        return qs.count()


def snippet_costs(user, q: str) -> dict:
    """One page's snippets: the selector's (Python) and ``ts_headline``'s."""
    results, _ = message_search(user=user, q=q)
    ids = [int(r["message"]["id"]) for r in results]
    contents = Message.objects.filter(pk__in=ids).values_list("content", flat=True)
    contents = list(contents)
    query = parse_query(q)
    reps = 20
    t = time.perf_counter()
    for _ in range(reps):
        for content in contents:
            snippet_html(content, query)
    python_ms = (time.perf_counter() - t) / reps * 1000
    config = settings.SEARCH["CONFIG"]
    base = f"FROM {MESSAGE} WHERE id = ANY(%s)"
    timings = {}
    for key, select in (
        ("plainMs", "SELECT content "),
        (
            "headlineMs",
            "SELECT ts_headline(%s::regconfig, content, "
            "to_tsquery(%s::regconfig, %s), "
            "'MaxWords=35, MinWords=15, StartSel=<mark>, StopSel=</mark>') ",
        ),
    ):
        params = [config, config, query.postgres()] if key == "headlineMs" else []
        with connection.cursor() as c:
            t = time.perf_counter()
            for _ in range(reps):
                c.execute(select + base, [*params, ids])
                c.fetchall()
            timings[key] = (time.perf_counter() - t) / reps * 1000
    return {
        "q": q,
        "hits": len(ids),
        "pythonMs": round(python_ms, 2),
        "sqlPlainMs": round(timings["plainMs"], 2),
        "sqlHeadlineMs": round(timings["headlineMs"], 2),
    }


def search(args: dict) -> dict:
    vocab = vocabulary(args["vocabulary"])
    heavy = User.objects.get(username=HEAVY)
    light = User.objects.get(username=LIGHT)
    texts = _stored_texts(heavy.pk, 4000)
    rows = query_sets(vocab, args["queries"], texts)
    repeats = args["repeats"]
    rng = random.Random(SEED + 3)
    out: dict = {"rows": {}, "repeats": repeats, "queries": args["queries"]}
    for who, user in (("heavy", heavy), ("light", light)):
        # Every query once, unmeasured (caches, hint bits), then the measured
        # samples in a shuffled order so that no row gets a quieter moment.
        samples = [(row, q) for row, qs in rows.items() for q in qs]
        for _, q in samples:
            try:
                message_search(user=user, q=q)
            except Invalid:
                pass
        plan = samples * repeats
        rng.shuffle(plan)
        took: dict[str, list[float]] = {row: [] for row in rows}
        matched: dict[str, list[float]] = {row: [] for row in rows}
        hits: dict[str, list[int]] = {row: [] for row in rows}
        refused: dict[str, int] = dict.fromkeys(rows, 0)
        t0 = time.monotonic()
        for row, q in plan:
            sink: list = []
            t = time.perf_counter()
            try:
                with match_timer(sink):
                    found, _ = message_search(user=user, q=q)
            except Invalid:
                refused[row] += 1
                found = []
            took[row].append(time.perf_counter() - t)
            if sink:
                matched[row].append(sink[0][0])
            hits[row].append(len(found))
        log(f"{who}: {len(plan)} searches in {time.monotonic() - t0:.1f}s")
        for row, qs in rows.items():
            sink = []
            with match_timer(sink):
                try:
                    message_search(user=user, q=qs[0])
                except Invalid:
                    pass
            plan_info = explain(sink[0][1], sink[0][2]) if sink else None
            counts = [count_matches(user, q) for q in qs[: min(5, len(qs))]]
            ms = [x * 1000 for x in took[row]]
            entry = out["rows"].setdefault(row, {"examples": qs[:3]})
            entry[who] = {
                "samples": len(ms),
                "p50": round(quantile(ms, 0.5), 2),
                "p99": round(quantile(ms, 0.99), 2),
                "max": round(max(ms), 2),
                "matchP50": round(quantile([x * 1000 for x in matched[row]], 0.5), 2)
                if matched[row]
                else None,
                "pageHits": round(statistics.mean(hits[row]), 1),
                "matches": round(statistics.median(counts)),
                "refused": refused[row],
                "plan": plan_info,
            }
    out["snippets"] = [
        snippet_costs(heavy, rows[row][0])
        for row in ("1 word, common", "1 word, mid", "phrase, common words")
    ]
    return out


# --- insert ----------------------------------------------------------------------


def gin_flush() -> float | None:
    """Merge the GIN index's pending list into the index; its seconds (None
    without the index)."""
    with connection.cursor() as c:
        c.execute("SELECT to_regclass(%s)", [search_index.GIN_INDEX])
        if c.fetchone()[0] is None:
            return None
        t = time.perf_counter()
        c.execute(
            "SELECT gin_clean_pending_list(%s::regclass)", [search_index.GIN_INDEX]
        )
        return time.perf_counter() - t


def bulk_insert(n: int, repeats: int = 3) -> list[float]:
    """The database's own cost per message, µs: copies of the last ``n``
    messages in one ``INSERT … SELECT`` (new seqs), rolled back; one figure per
    repetition. With the index, the trigger and the GIN insert (its pending
    list merged whenever it outgrows ``gin_pending_list_limit``) are in it."""
    figures = []
    with connection.cursor() as c:
        c.execute(f"SELECT max(id) FROM {MESSAGE}")
        top = c.fetchone()[0]
    for _ in range(repeats):
        with transaction.atomic(), connection.cursor() as c:
            t = time.perf_counter()
            c.execute(
                f"INSERT INTO {MESSAGE} (bam_id, sender_id, content, type, seq, "
                f"created_at) SELECT bam_id, sender_id, content, type, "
                f"seq + 1000000000, created_at FROM {MESSAGE} WHERE id > %s",
                [top - n],
            )
            figures.append((time.perf_counter() - t) / c.rowcount * 1e6)
            transaction.set_rollback(True)
    return [round(x, 1) for x in figures]


def insert(args: dict) -> dict:
    vocab = vocabulary(args["vocabulary"])
    texts = Texts(vocab, SEED + 4 + args["round"])
    rng = random.Random(SEED + 5 + args["round"])
    heavy = User.objects.get(username=HEAVY)
    bams = list(Membership.objects.filter(user=heavy).values_list("bam_id", flat=True))
    gin_flush()  # every round starts with an empty pending list

    def one() -> float:
        t = time.perf_counter()
        message_create(bam_id=rng.choice(bams), sender=heavy, content=texts.next())
        return time.perf_counter() - t

    for _ in range(args["warmup"]):
        one()
    singles = [one() for _ in range(args["singles"])]
    size = args["batchSize"]
    batches = []
    for _ in range(args["batches"]):
        drafts = [
            message_draft(bam_id=rng.choice(bams), sender=heavy, content=texts.next())
            for _ in range(size)
        ]
        t = time.perf_counter()
        done = messages_create(drafts)
        batches.append(time.perf_counter() - t)
        bad = [r for r in done if isinstance(r, Exception)]
        if bad:
            raise SystemExit(f"batch refused: {bad[0]!r}")
    written = args["warmup"] + args["singles"] + args["batches"] * size
    flush = gin_flush()
    bulk = bulk_insert(args["bulk"]) if args.get("bulkRound") else None
    return {
        "bulkUs": bulk,
        "indexed": flush is not None,
        "singlesUs": [round(x * 1e6) for x in singles],
        "batchesUs": [round(x * 1e6) for x in batches],
        "batchSize": size,
        "written": written,
        "pendingFlushMs": None if flush is None else round(flush * 1000, 1),
        "sizes": sizes(),
    }


def main() -> None:
    mode, raw = sys.argv[1], sys.argv[2]
    args = json.loads(raw)
    run = {"fill": fill, "search": search, "insert": insert}[mode]
    result(run(args))


if __name__ == "__main__":
    main()
