"""The markdown table and the issue's targets."""

from __future__ import annotations

from .config import PROFILES, TIMES, servers


def fmt(x: float | None, digits: int = 1) -> str:
    if x is None:
        return "n/a"
    if abs(x) >= 10_000:
        return f"{x / 1000:.0f}k"
    if abs(x) >= 100:
        return f"{x:.0f}"
    return f"{x:.{digits}f}"


def table(all_results: dict, order: list[str], prof: dict, info: dict) -> str:
    labels = servers()
    ref = all_results.get("node", {})
    rate = fmt(prof["rate"])
    rest_rate = fmt(prof["rest_rate"])

    def phase(key: str, name: str) -> dict | None:
        r = all_results.get(key, {}).get(name)
        return r if isinstance(r, dict) else None

    def value(key, name, pick):
        r = phase(key, name)
        if r is None or "error" in r:
            return None
        try:
            return pick(r)
        except (KeyError, TypeError):
            return None

    def latency(r):
        lat = r["latencyMs"]
        note = ""
        if r["lost"] or r["deliveredPerS"] < 0.95 * r["targetRate"]:
            note = f" ⚠ {fmt(r['deliveredPerS'])}/s, {r['lost']} lost"
        return (lat["p50"], lat["p99"], note)

    def storm_seconds(r):
        notes = []
        if r["failed"]:
            notes.append(f"{r['failed']} never joined")
        if r["retries"]:
            notes.append(f"{r['retries']} retries")
        if r["listenOverflows"]:
            notes.append(f"{r['listenOverflows']} accept-queue overflows")
        return (r["seconds"], " ⚠ " + ", ".join(notes) if notes else "")

    rows = [
        ("relay: delivered msg/s", "relay_closed", lambda r: r["deliveredPerS"], 0),
        (
            "relay: server CPU µs / delivered msg",
            "relay_closed",
            lambda r: r["serverCpuUsPerDelivery"],
            1,
        ),
        (f"relay: latency p50 / p99 ms @ {rate}/s", "relay_open", latency, 2),
        ("chat: delivered msg/s", "chat_closed", lambda r: r["deliveredPerS"], 0),
        (
            "chat: server CPU µs / delivered msg",
            "chat_closed",
            lambda r: r["serverCpuUsPerDelivery"],
            1,
        ),
        (f"chat: latency p50 / p99 ms @ {rate}/s", "chat_open", latency, 2),
        (
            "REST→realtime: delivered msg/s",
            "rest_closed",
            lambda r: r["deliveredPerS"],
            0,
        ),
        (
            "REST→realtime: server CPU µs / delivered msg",
            "rest_closed",
            lambda r: r["serverCpuUsPerDelivery"],
            1,
        ),
        (
            f"REST→realtime: latency p50 / p99 ms @ {rest_rate}/s",
            "rest_open",
            latency,
            2,
        ),
        (
            f"idle: KB RSS per connection (N={prof['idle_n']}, {prof['hold_s']} s)",
            "idle",
            lambda r: r["kbPerConnection"],
            1,
        ),
        (
            f"idle: server CPU % while {prof['idle_n']} are held",
            "idle",
            lambda r: 100 * r["idleCpuShare"],
            1,
        ),
        (
            f"connect storm: connect+join {prof['storm_n']} clients, s",
            "storm",
            storm_seconds,
            2,
        ),
        (
            "connect+join, ≤100 at a time: server CPU µs per client",
            "idle",
            lambda r: r["connectCpuUsPerClient"],
            1,
        ),
        (
            "connect storm: server CPU µs per joined client",
            "storm",
            lambda r: (
                r["serverCpuUsPerClient"],
                f" ⚠ only {r['clients'] - r['failed']} joined" if r["failed"] else "",
            ),
            1,
        ),
        (
            "loadgen CPU % of a core (relay, closed loop)",
            "relay_closed",
            lambda r: 100 * r["loadgenCpuShare"],
            1,
        ),
    ]
    head = ["figure"] + [labels[k].label for k in order]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] + ["---:"] * len(order)) + "|",
    ]
    for label, name, pick, digits in rows:
        cells = [label]
        ratios = not label.startswith(("loadgen", "idle: server CPU"))
        ref_v = value("node", name, pick) if ref and ratios else None
        for key in order:
            v = value(key, name, pick)
            if v is None:
                r = phase(key, name)
                cells.append("error" if r and "error" in r else "n/a")
                continue
            note = ""
            if isinstance(v, tuple) and len(v) == 2:
                v, note = v
                if v is None:
                    cells.append("n/a" + note)
                    continue
            if isinstance(v, tuple):
                p50, p99, note = v
                text = f"{fmt(p50, 2)} / {fmt(p99, 2)}"
                if key != "node" and isinstance(ref_v, tuple) and ref_v[1]:
                    text += f" ({p99 / ref_v[1]:.1f}{TIMES})"
                cells.append(text + note)
                continue
            text = fmt(v, digits)
            if isinstance(ref_v, tuple) and len(ref_v) == 2:
                ref_v = ref_v[0]
            if key != "node" and isinstance(ref_v, int | float) and ref_v:
                text += f" ({v / ref_v:.1f}{TIMES})"
            cells.append(text + note)
        lines.append("| " + " | ".join(cells) + " |")
    deflate = ["permessage-deflate accepted"]
    for key in order:
        d = all_results.get(key, {}).get("deflate")
        deflate.append({True: "yes", False: "no"}.get(d, "?"))
    lines.append("| " + " | ".join(deflate) + " |")

    mode = "quick" if prof is PROFILES["quick"] else "full"
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
        f"Rooms of {prof['room']}; relay/chat: {prof['groups']} rooms, "
        f"{prof['senders']} senders per room, closed loop {prof['closed_s']} s, "
        f"open loop {prof['open_s']} s; REST: one poster per room. Ratios are to "
        "the Node server on the same line (p99 for latency). One Node process "
        "drives every server over WebSocket; all on 127.0.0.1.",
        "",
    ]
    return "\n".join(header + lines + ["", *targets(all_results, prof)])


def targets(all_results: dict, prof: dict) -> list[str]:
    """Issue 6's targets, checked for each BAM Chat server that ran."""

    def get(key, name, field_):
        r = all_results.get(key, {}).get(name)
        if not isinstance(r, dict) or "error" in r:
            return None
        value = r
        for part in field_.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return value

    out = [
        f"Targets of issue 6 (ratios to Node, same run; p99 at {fmt(prof['rate'])}/s):"
    ]
    node_relay = get("node", "relay_closed", "serverCpuUsPerDelivery")
    node_chat = get("node", "chat_closed", "serverCpuUsPerDelivery")
    node_kb = get("node", "idle", "kbPerConnection")
    node_storm = get("node", "storm", "seconds")
    x = TIMES
    checks = [
        (f"relay CPU/msg ≤ 1.5{x} Node", "relay_closed", "serverCpuUsPerDelivery",
         node_relay, 1.5, x),
        (f"chat CPU/msg ≤ 2{x} Node relay", "chat_closed", "serverCpuUsPerDelivery",
         node_chat, 2.0, x),
        ("chat p99 ≤ 5 ms", "chat_open", "latencyMs.p99", 1.0, 5.0, " ms"),
        (f"KB per idle connection ≤ 1.5{x} Node", "idle", "kbPerConnection",
         node_kb, 1.5, x),
        (f"connect+join {prof['storm_n']} ≤ 1.3{x} Node", "storm", "seconds",
         node_storm, 1.3, x),
    ]  # fmt: skip
    for key in all_results:
        if servers()[key].kind != "bamchat":
            continue
        parts = []
        for label, name, field_, ref, limit, unit in checks:
            v = get(key, name, field_)
            if v is None or not ref:
                parts.append(f"{label}: n/a")
                continue
            ratio = v / ref
            verdict = (
                "met" if ratio <= limit else f"missed by {ratio / limit:.1f}{TIMES}"
            )
            parts.append(f"{label}: {ratio:.1f}{unit} ({verdict})")
        out.append(f"- {servers()[key].label}: " + "; ".join(parts))
    return out
