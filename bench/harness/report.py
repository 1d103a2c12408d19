"""The markdown table and the targets of issue 15."""

from __future__ import annotations

from collections.abc import Callable

from .config import TIMES, servers

ONE_PROCESS_PG = "daphne-pg"  # what the cluster's throughput is compared with


def fmt(x: float | None, digits: int = 1) -> str:
    if x is None:
        return "n/a"
    if abs(x) >= 10_000:
        return f"{x / 1000:.0f}k"
    if abs(x) >= 100:
        return f"{x:.0f}"
    return f"{x:.{digits}f}"


def rate_label(x: float) -> str:
    return f"{x / 1000:g}k" if x >= 1000 else f"{x:g}"


def result(all_results: dict, key: str, name: str) -> dict | None:
    r = all_results.get(key, {}).get(name)
    return r if isinstance(r, dict) else None


def ok(all_results: dict, key: str, name: str) -> dict | None:
    r = result(all_results, key, name)
    return r if r is not None and "error" not in r else None


def keeps_up(r: dict) -> bool:
    """An open loop's server delivered what was offered, nothing left behind."""
    return not r["lost"] and r["deliveredPerS"] >= 0.95 * r["targetRate"]


def rss_growth(o: dict) -> tuple[float, float, bool]:
    """MB added over the first and the second half of the overload, and whether
    memory is bounded: the second half added at most a quarter of the first
    half's growth, or under 5 MB (a server that queues grows all along)."""
    first = (o["rssHalfKb"] - o["rssBeforeKb"]) / 1024
    second = (o["rssLoadEndKb"] - o["rssHalfKb"]) / 1024
    return first, second, second <= max(5.0, 0.25 * first)


def cluster_ratio(all_results: dict, key: str) -> float | None:
    """Chat msg/s of a several-process server over one process on PG+Redis."""
    if servers()[key].processes < 2:
        return None
    many = ok(all_results, key, "chat_closed")
    one = ok(all_results, ONE_PROCESS_PG, "chat_closed")
    if not many or not one or not one["deliveredPerS"]:
        return None
    return many["deliveredPerS"] / one["deliveredPerS"]


# -- the cells: (value the ratio to Node is taken of, or None; text) --------------
Pick = Callable[[dict], tuple[float | None, str]]


def number(field: str, digits: int = 1, scale: float = 1.0) -> Pick:
    def pick(r: dict):
        v = r[field]
        return (None, "n/a") if v is None else (v * scale, fmt(v * scale, digits))

    return pick


def dropped(r: dict) -> str:
    """Sockets whose connection ended during the phase, by reason."""
    drops = r.get("drops") or {}
    if not drops:
        return ""
    n = sum(drops.values())
    return f"{n} sockets dropped ({', '.join(f'{k}: {v}' for k, v in drops.items())})"


def latency(r: dict):
    lat = r["latencyMs"]
    if not lat.get("n"):
        return None, f"n/a ⚠ {fmt(r['deliveredPerS'])}/s, {r['lost']} lost"
    note = "" if keeps_up(r) else f" ⚠ {fmt(r['deliveredPerS'])}/s, {r['lost']} lost"
    if dropped(r):
        note += f" ⚠ {dropped(r)}"
    return lat["p99"], f"{fmt(lat['p50'], 2)} / {fmt(lat['p99'], 2)}{note}"


def storm_seconds(r: dict):
    notes = []
    if r["failed"]:
        notes.append(f"{r['failed']} never joined")
    if r["retries"]:
        notes.append(f"{r['retries']} retries")
    if r["listenOverflows"]:
        notes.append(f"{r['listenOverflows']} accept-queue overflows")
    return r["seconds"], fmt(r["seconds"], 2) + (
        " ⚠ " + ", ".join(notes) if notes else ""
    )


def idle_kb(r: dict):
    v = r["kbPerConnection"]
    notes = []
    if r["failed"]:
        notes.append(f"{r['failed']} never joined")
    if r["droppedDuringHold"]:
        notes.append(f"{r['droppedDuringHold']} dropped while held")
    return v, fmt(v, 1) + (" ⚠ " + ", ".join(notes) if notes else "")


def storm_cpu(r: dict):
    v = r["serverCpuUsPerClient"]
    note = f" ⚠ only {r['clients'] - r['failed']} joined" if r["failed"] else ""
    return v, fmt(v, 1) + note


def overload_rates(r: dict):
    o = r["overload"]
    return None, f"{fmt(r['targetRate'], 0)} → {fmt(o['deliveredDuringLoadPerS'], 0)}"


def overload_rss(r: dict):
    o = r["overload"]
    mb = [o[k] / 1024 for k in ("rssBeforeKb", "rssPeakKb", "rssAfterKb")]
    first, second, bounded = rss_growth(o)
    note = "" if bounded else f" ⚠ growing (+{first:.0f} then +{second:.0f} MB)"
    return None, " / ".join(f"{x:.0f}" for x in mb) + note


def overload_acks(r: dict):
    ack = r["ackLatencyMs"]
    if not ack.get("n"):
        return None, "n/a ⚠ no acks"
    return None, f"{fmt(ack['p50'], 1)} / {fmt(ack['p99'], 1)}"


def overload_lost(r: dict):
    o = r["overload"]
    notes = []
    if o["lostMessages"] is None:
        text = "n/a"
        notes.append(f"{o['pendingMessages']} still on their way at the end")
    else:
        text = str(o["lostMessages"])
        if o["lostMessages"]:
            notes.append(
                f"{o['neverAcked']} never acked, {o['undelivered']} not delivered "
                "to every member"
            )
    if o["refused"]:
        notes.append(f"{o['refused']} refused")
    if dropped(r):
        notes.append(dropped(r))
    return None, text + (" ⚠ " + "; ".join(notes) if notes else "")


def overload_recovery(r: dict):
    o = r["overload"]
    if o["recoverySeconds"] is None:
        return None, f"> {fmt(o['recoveryMax'], 0)} ⚠ not back"
    return None, fmt(o["recoverySeconds"], 1)


def rows(prof: dict) -> list[tuple[str, str, Pick, bool]]:
    """(label, phase, pick, ratio to Node) in the order they are shown."""
    lo, hi = (rate_label(x) for x in prof["chat_rates"])
    over = f"overload (2{TIMES} chat msg/s, {prof['overload_s']} s)"
    cpu = "serverCpuUsPerDelivery"
    return [
        ("chat: delivered msg/s (closed loop)", "chat_closed",
         number("deliveredPerS", 0), True),
        ("chat: server CPU µs / delivered msg", "chat_closed", number(cpu), True),
        (f"chat: latency p50 / p99 ms @ {lo}/s", "chat_open_1k", latency, True),
        (f"chat: latency p50 / p99 ms @ {hi}/s", "chat_open_5k", latency, True),
        (f"connect storm: connect+join {prof['storm_n']} clients, s", "storm",
         storm_seconds, True),
        (f"idle: KB RSS per connection (N={prof['idle_n']}, {prof['hold_s']} s)",
         "idle", idle_kb, True),
        (f"{over}: offered → delivered msg/s", "overload", overload_rates, False),
        (f"{over}: server RSS MB before / peak / after", "overload",
         overload_rss, False),
        (f"{over}: ack latency p50 / p99 ms", "overload", overload_acks, False),
        (f"{over}: messages lost", "overload", overload_lost, False),
        (f"{over}: recovery s", "overload", overload_recovery, False),
        ("relay: delivered msg/s", "relay_closed", number("deliveredPerS", 0), True),
        ("relay: server CPU µs / delivered msg", "relay_closed", number(cpu), True),
        (f"relay: latency p50 / p99 ms @ {rate_label(prof['relay_rate'])}/s",
         "relay_open", latency, True),
        ("REST→realtime: delivered msg/s", "rest_closed",
         number("deliveredPerS", 0), True),
        ("REST→realtime: server CPU µs / delivered msg", "rest_closed",
         number(cpu), True),
        (f"REST→realtime: latency p50 / p99 ms @ {rate_label(prof['rest_rate'])}/s",
         "rest_open", latency, True),
        (f"idle: server CPU % while {prof['idle_n']} are held", "idle",
         number("idleCpuShare", 1, 100), False),
        ("connect+join, ≤100 at a time: server CPU µs per client", "idle",
         number("connectCpuUsPerClient"), True),
        ("connect storm: server CPU µs per joined client", "storm", storm_cpu, True),
        ("loadgen CPU % of a core (chat, closed loop)", "chat_closed",
         number("loadgenCpuShare", 1, 100), False),
        ("loadgen CPU % of a core (relay, closed loop)", "relay_closed",
         number("loadgenCpuShare", 1, 100), False),
    ]  # fmt: skip


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
                cells = ["cluster ÷ one process (PG+Redis): chat msg/s"]
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
                f"chat_closed of {key} and {ONE_PROCESS_PG})"
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
