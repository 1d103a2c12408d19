"""The figures and the table of ``bench/search.py`` (standard library only; the
worker's ``search`` mode takes its ``quantile`` too).
"""

from __future__ import annotations

ROWS = (
    "1 word, common",
    "1 word, mid",
    "1 word, rare",
    "1 word, no match",
    "2 words, common",
    "2 words, common + rare",
    "3 words, common",
    "3 words, common + mid + rare",
    "phrase, common words",
    "phrase, with a rare word",
)


def quantile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (q in 0..1)."""
    s = sorted(values)
    if len(s) == 1:
        return s[0]
    at = q * (len(s) - 1)
    lo = int(at)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (at - lo)


def insert_figures(rounds: list[dict]) -> dict:
    singles = [x for r in rounds for x in r["singlesUs"]]
    batches = [x / r["batchSize"] for r in rounds for x in r["batchesUs"]]
    flushes = [
        r["pendingFlushMs"] * 1000 / r["written"]
        for r in rounds
        if r["pendingFlushMs"] is not None
    ]
    bulk = [x for r in rounds for x in (r["bulkUs"] or [])]
    return {
        "bulkMedian": quantile(bulk, 0.5) if bulk else None,
        "singleP50": quantile(singles, 0.5),
        "singleP99": quantile(singles, 0.99),
        "singleMean": sum(singles) / len(singles),
        "batchPerMessageP50": quantile(batches, 0.5),
        "batchPerMessageMean": sum(batches) / len(batches),
        "pendingFlushPerMessage": (sum(flushes) / len(flushes)) if flushes else None,
        "samples": len(singles),
        "batchSamples": len(batches),
    }


def mb(n) -> str:
    return "n/a" if n is None else f"{n / 1024 / 1024:,.0f} MB"


def ms(x) -> str:
    if x is None:
        return "n/a"
    return f"{x:.1f}" if x < 100 else f"{x:,.0f}"


def report(info: dict, prof_name: str, fill: dict, found: dict, writes: dict) -> str:
    out = [
        f"## Message search on PostgreSQL ({prof_name} profile)",
        "",
        f"{info['date']}; {info['nproc']} cores, {info['cpu']}, {info['memGb']} GB; "
        f"PostgreSQL {info.get('postgres', '?')}; Python {info['python']}, "
        f"Django {info['django']}; commit {info['commit']}; load average "
        f"{' '.join(info['loadavg'])} at the start, "
        f"{' '.join(info.get('loadavgEnd', ['?']))} at the end (other work on "
        f"the machine shows in the figures).",
        "",
        f"{fill['messages']:,} messages ({fill['meanWords']} words on average, "
        f"Zipf over {fill['vocabulary']:,} words) in {fill['bams']:,} BAMs of "
        f"{fill['users']:,} users. The heavy caller is in {fill['heavyBams']} BAMs "
        f"({fill['heavyMessages']:,} messages), the light one in "
        f"{fill['lightBams']} ({fill['lightMessages']:,}). Each row: "
        f"{found['queries']} queries, each measured {found['repeats']} times "
        f"after one unmeasured pass; milliseconds for the selector's first page "
        f"(50 hits, snippets and payloads included); `match` is its id query "
        f"alone; `matches` the median number of messages the caller would find "
        f"in all pages.",
        "",
        "| query | matches (heavy) | heavy p50 | heavy p99 | match p50 | "
        "light p50 | light p99 | refused |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in ROWS:
        r = found["rows"].get(row)
        if r is None:
            continue
        h, li = r["heavy"], r["light"]
        refused = h["refused"] + li["refused"]
        out.append(
            f"| {row} | {h['matches']:,} | {ms(h['p50'])} | {ms(h['p99'])} | "
            f"{ms(h['matchP50'])} | {ms(li['p50'])} | {ms(li['p99'])} | "
            f"{refused or ''} |"
        )
    out += ["", "Plans of each row's first query (heavy caller):", ""]
    for row in ROWS:
        r = found["rows"].get(row)
        if r and r["heavy"]["plan"]:
            p = r["heavy"]["plan"]
            out.append(f"- {row} (`{r['examples'][0]}`, {p['ms']} ms): {p['shape']}")
    out += [
        "",
        "Snippets of one page (50 hits), ms: the selector's (Python) and what "
        "`ts_headline` would cost for the same messages:",
        "",
        "| query | hits | Python | SQL, content only | SQL with ts_headline |",
        "|---|---:|---:|---:|---:|",
    ]
    for s in found["snippets"]:
        out.append(
            f"| `{s['q']}` | {s['hits']} | {s['pythonMs']:.2f} | "
            f"{s['sqlPlainMs']:.2f} | {s['sqlHeadlineMs']:.2f} |"
        )
    a, b = writes["indexed"], writes["plain"]
    sa, sb = writes["sizesIndexed"], writes["sizesPlain"]

    def row(label: str, key: str) -> str:
        x, y = a[key], b[key]
        if x is None or y is None:
            return f"| {label} | {ms(x)} | {ms(y)} | |"
        return f"| {label} | {ms(x)} | {ms(y)} | {x / y:.2f}{chr(0xD7)} |"

    out += [
        "",
        f"Insert cost through the write path, µs per message, with the search "
        f"index and without it (the same database migrated back to before "
        f"it), {a['samples']:,} single messages and {a['batchSamples']:,} "
        f"batches of {writes['batchSize']} on each, in alternating rounds:",
        "",
        "| | with index | without | ratio |",
        "|---|---:|---:|---:|",
        row("one per transaction (REST), p50", "singleP50"),
        row("one per transaction (REST), p99", "singleP99"),
        row("one per transaction (REST), mean", "singleMean"),
        row(
            f"batch of {writes['batchSize']} (socket group commit), mean",
            "batchPerMessageMean",
        ),
        row(
            f"database alone: {writes['bulk']:,} in one INSERT … SELECT, median",
            "bulkMedian",
        ),
        f"| GIN pending-list merge, amortised | "
        f"{ms(a['pendingFlushPerMessage'])} | | |",
        f"| message table + indexes | {mb(sa['totalBytes'])} | "
        f"{mb(sb['totalBytes'])} | |",
        f"| of which the GIN index / the vectors | {mb(sa['ginBytes'])} / "
        f"{mb(sa['vectorBytes'])} | | |",
        "",
        f"Fill: {fill['seconds']['total']:.0f} s (texts {fill['seconds']['texts']:.0f} "
        f"s, insert {fill['seconds']['insert']:.0f} s, indexes "
        f"{fill['seconds']['indexes']:.0f} s of which GIN "
        f"{fill['seconds']['indexEach'].get('messaging_message_search_gin', 0):.0f} s, "
        f"vacuum {fill['seconds']['vacuum']:.0f} s).",
    ]
    return "\n".join(out)
