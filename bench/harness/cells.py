"""The cells of the markdown table: each figure picked from a phase's result."""

from __future__ import annotations

from collections.abc import Callable

from .config import TIMES


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


# -- the cells: (value the ratio to Node is taken of, or None; text) --------------
Pick = Callable[[dict], tuple[float | None, str]]


def number(field: str, digits: int = 1, scale: float = 1.0) -> Pick:
    def pick(r: dict):
        v = r[field]
        return (None, "n/a") if v is None else (v * scale, fmt(v * scale, digits))

    return pick


def loop_cpu(r: dict):
    """Server CPU µs per delivered message spent on the processes' main threads
    (the event loop), as against their other threads (database work)."""
    share, cpu = r.get("serverLoopShare"), r["serverCpuUsPerDelivery"]
    return (None, "n/a") if share is None or cpu is None else (None, fmt(cpu * share))


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
        ("chat: of which the event-loop threads", "chat_closed", loop_cpu, False),
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
