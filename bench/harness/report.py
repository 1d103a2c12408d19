"""The markdown table and the targets of issue 15."""

from __future__ import annotations

from .cells import fmt, keeps_up, rate_label, rows, rss_growth
from .config import TIMES, servers


def result(all_results: dict, key: str, name: str) -> dict | None:
    r = all_results.get(key, {}).get(name)
    return r if isinstance(r, dict) else None


def ok(all_results: dict, key: str, name: str) -> dict | None:
    r = result(all_results, key, name)
    return r if r is not None and "error" not in r else None


def cluster_ratio(all_results: dict, key: str) -> float | None:
    """Chat msg/s of a several-process server over one of its processes alone."""
    server = servers()[key]
    if server.processes < 2:
        return None
    many = ok(all_results, key, "chat_closed")
    one = ok(all_results, server.one_process, "chat_closed")
    if not many or not one or not one["deliveredPerS"]:
        return None
    return many["deliveredPerS"] / one["deliveredPerS"]


def table(all_results: dict, order: list[str], prof: dict, info: dict) -> str:
    labels = servers()
    head = ["figure"] + [labels[k].label for k in order]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] + ["---:"] * len(order)) + "|",
    ]

    def line(cells: list[str]) -> None:
        lines.append("| " + " | ".join(cells) + " |")

    for label, name, pick, ratios in rows(prof):
        if not any(result(all_results, k, name) for k in order):
            continue
        ref = None
        if ratios and ok(all_results, "node", name):
            try:
                ref = pick(ok(all_results, "node", name))[0]
            except (KeyError, TypeError):
                ref = None
        cells = [label]
        for key in order:
            r = result(all_results, key, name)
            if r is None:
                cells.append("n/a")
                continue
            if "error" in r:
                cells.append("error")
                continue
            try:
                v, text = pick(r)
            except (KeyError, TypeError):
                cells.append("n/a")
                continue
            if key != "node" and v is not None and ref:
                text += f" ({v / ref:.1f}{TIMES})"
            cells.append(text)
        line(cells)
        if name == "chat_closed" and label.startswith("chat: delivered"):
            ratios_row = [k for k in order if cluster_ratio(all_results, k) is not None]
            if ratios_row or any(labels[k].processes > 1 for k in order):
                cells = ["several processes ÷ one: chat msg/s"]
                for key in order:
                    x = cluster_ratio(all_results, key)
                    cells.append(f"{x:.2f}{TIMES}" if x is not None else "—")
                line(cells)
    deflate = ["permessage-deflate accepted"]
    for key in order:
        d = all_results.get(key, {}).get("deflate")
        deflate.append({True: "yes", False: "no"}.get(d, "?"))
    line(deflate)

    mode = prof["mode"]
    header = [
        f"### Benchmark ({mode} mode) — {info['date']}",
        "",
        f"Machine: {info['nproc']} CPUs ({info['cpu']}), {info['memGb']} GB RAM, "
        f"Linux {info['kernel']}, load average at start {' '.join(info['loadavg'])}; "
        f"BAM Chat at commit {info['commit']} (plus any uncommitted changes). "
        f"Python {info['python']} (Django {info['django']}, python-socketio "
        f"{info['pythonSocketio']}, python-engineio {info['pythonEngineio']}, "
        f"daphne {info['daphne']}, uvicorn {info['uvicorn']}), Node {info['node']} "
        f"(socket.io {info['socketio']}, socket.io-client {info['socketioClient']}).",
        "",
        f"Rooms of {prof['room']}; chat/relay: {prof['groups']} rooms, "
        f"{prof['senders']} senders per room, closed loop {prof['closed_s']} s, "
        f"open loop {prof['open_s']} s. BAM Chat runs under daphne with an "
        "accept queue of 4096; SQLite = the embedded default (SQLite, in-memory "
        "layer); PG+Redis = PostgreSQL and Redis; 2 daphne = two processes on "
        "one database and Redis, clients alternating between them (CPU and RSS "
        "are their sums). Ratios are to the Node relay on the same line (p99 for "
        "latency). One Node process drives every server over WebSocket; all on "
        "127.0.0.1.",
        "",
    ]
    return "\n".join(header + lines + ["", *targets(all_results, order, prof)])


# -- targets -----------------------------------------------------------------------
def verdict(ratio: float, limit: float, at_least: bool = False) -> str:
    met = ratio >= limit if at_least else ratio <= limit
    if met:
        return "met"
    if at_least and ratio <= 0:
        return "missed (nothing delivered)"
    return f"missed by {(limit / ratio if at_least else ratio / limit):.1f}{TIMES}"


def targets(all_results: dict, order: list[str], prof: dict) -> list[str]:
    """Issue 15's targets, checked for each BAM Chat server that ran."""
    known = servers()
    x = TIMES
    lo, hi = prof["chat_rates"]
    quick = "; quick mode: small sizes and rates, indicative only"
    out = [
        "Targets of issue 15 (ratios to the Node relay in this run"
        + (quick if prof["mode"] == "quick" else "")
        + "):"
    ]

    def node(name: str, field: str) -> float | None:
        r = ok(all_results, "node", name)
        return r.get(field) if r else None

    def vs_node(key, name, field, limit, what):
        r = ok(all_results, key, name) or {}
        v = r.get(field)
        ref = node(name, field)
        if v is None or not ref:
            return None
        text = f"{what} ≤ {limit:g}{x} Node: {v / ref:.1f}{x} — "
        if r.get("failed") and name in ("idle", "storm"):
            joined = r["clients"] - r["failed"]
            return text + f"missed: {r['failed']} never joined ({joined} did)"
        return text + verdict(v / ref, limit)

    def open_loop(key, name, rate, p99_limit):
        r = ok(all_results, key, name)
        if r is None:
            return None
        what = f"chat @ {rate_label(rate)} deliveries/s: "
        if name == "chat_open_5k":
            what += "no backlog, "
        what += f"p99 ≤ {p99_limit:g} ms: "
        factors, parts = [], []
        p99 = r["latencyMs"].get("p99")
        if not keeps_up(r):
            got = r["deliveredPerS"]
            factors.append(rate / got if got else float("inf"))
            parts.append(f"backlog ({fmt(got, 0)}/s delivered, {r['lost']} lost)")
        if p99 is not None:
            factors.append(p99 / p99_limit)
            parts.append(f"p99 {fmt(p99, 1)} ms")
        worst = max(factors) if factors else float("inf")
        judged = "met" if worst <= 1 else f"missed by {worst:.1f}{x}"
        return what + ", ".join(parts) + " — " + judged

    def overload(key):
        r = ok(all_results, key, "overload")
        if r is None:
            return None
        o = r["overload"]
        first, second, bounded = rss_growth(o)
        back = o["recoverySeconds"]
        lost = o["lostMessages"]
        parts = [
            f"memory {'bounded' if bounded else 'growing'} "
            f"(+{first:.0f} then +{second:.0f} MB)",
            f"{lost} lost"
            if lost is not None
            else f"lost unknown ({o['pendingMessages']} still on their way)",
            f"back in {back:.1f} s"
            if back is not None
            else f"not back in {fmt(o['recoveryMax'], 0)} s",
        ]
        misses = []
        if not bounded:
            misses.append("memory")
        if lost is None or lost:
            misses.append("lost" if lost else "lost unknown")
        if back is None or back > 5:
            misses.append(
                "recovery" + (f" by {back / 5:.1f}{x}" if back is not None else "")
            )
        judged = "met" if not misses else "missed: " + ", ".join(misses)
        return (
            "overload: memory bounded, nothing lost, recovery ≤ 5 s: "
            + "; ".join(parts)
            + f" — {judged}"
        )

    for key in order:
        server = known[key]
        if server.kind != "bamchat":
            continue
        checks = [
            vs_node(key, "chat_closed", "serverCpuUsPerDelivery", 6,
                    "chat CPU per delivered msg (persisted)"),
            open_loop(key, "chat_open_1k", lo, 10),
            open_loop(key, "chat_open_5k", hi, 50),
            vs_node(key, "storm", "seconds", 3,
                    f"connect+join {prof['storm_n']} at once"),
            vs_node(key, "idle", "kbPerConnection", 2, "KB per idle connection"),
            overload(key),
        ]  # fmt: skip
        ratio = cluster_ratio(all_results, key)
        if ratio is not None:
            checks.append(
                f"chat msg/s ≥ 1.5{x} one process (PG+Redis): {ratio:.2f}{x} — "
                + verdict(ratio, 1.5, at_least=True)
            )
        elif server.processes > 1:
            checks.append(
                f"chat msg/s ≥ 1.5{x} one process (PG+Redis): n/a (needs "
                f"chat_closed of {key} and {server.one_process})"
            )
        measured = [c for c in checks if c]
        out.append(f"- {server.label}" + ("" if measured else ": nothing measured"))
        out.extend(f"  - {c}" for c in measured)
    if len(out) == 1:
        out.append("- no BAM Chat server ran")
    relay = [
        vs_node("py-relay", "chat_closed", "serverCpuUsPerDelivery", 6, "chat CPU/msg"),
        vs_node("py-relay", "storm", "seconds", 3, f"connect+join {prof['storm_n']}"),
        vs_node("py-relay", "idle", "kbPerConnection", 2, "KB per idle connection"),
    ]
    relay = [c for c in relay if c]
    if relay and "py-relay" in order:
        out.append(
            "- python-socketio relay (what the library and its server cost "
            "without BAM Chat), against the same limits"
        )
        out.extend(f"  - {c}" for c in relay)
    return out
