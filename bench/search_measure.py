"""The worker's ``search`` and ``insert`` modes (imported by
``bench/search_worker.py``, which sets Django up first).

``search`` times ``messaging.search.message_search`` (what ``GET
/search/messages`` calls) for each kind of query; ``insert`` times the write
path (``messaging.services.message_create`` / ``messages_create``).
"""

from __future__ import annotations

import json
import random
import statistics
import time
from contextlib import contextmanager

from django.conf import settings
from django.db import connection, transaction
from search_data import (
    HEAVY,
    LIGHT,
    MESSAGE,
    SEED,
    SYLLABLES,
    Texts,
    log,
    sizes,
    vocabulary,
)
from search_report import quantile

from accounts.models import User
from bamchat.errors import Invalid
from messaging import search_index
from messaging.drafts import message_draft
from messaging.models import Membership, Message
from messaging.search import message_search, snippet_html
from messaging.search_query import parse_query
from messaging.services import message_create, messages_create

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
