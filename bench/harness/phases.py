"""The load generator's phases: what each runs, and running them against a server."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

from .config import BENCH, PROFILED, HarnessError, Server, log
from .layout import Layout
from .processes import Profiler, Running, deflate_negotiated


def work_clients(layout: Layout) -> list[dict]:
    return [
        {
            "token": layout.users[u]["token"],
            "userId": layout.users[u]["id"],
            "bamId": layout.work_bams[g],
        }
        for g, members in enumerate(layout.groups)
        for u in members
    ]


def crowd_clients(layout: Layout, n: int, room: int) -> list[dict]:
    clients = []
    for i in range(n):
        b = i // room
        members = layout.groups[b % len(layout.groups)]
        u = members[i % room]
        clients.append(
            {
                "token": layout.users[u]["token"],
                "userId": layout.users[u]["id"],
                "bamId": layout.crowd_bams[b],
            }
        )
    return clients


def plan(server: Server, layout: Layout, prof: dict) -> list[tuple[str, dict]]:
    """The generator configs of every phase, in the order they run."""
    clients = work_clients(layout)
    room = prof["room"]
    senders = [
        g * room + k for g in range(len(layout.groups)) for k in range(prof["senders"])
    ]
    posters = [
        {"token": layout.users[m[0]]["token"], "bamId": layout.work_bams[g]}
        for g, m in enumerate(layout.groups)
    ]
    common = {"grace": prof["grace_s"], "quietMax": prof["quiet_max_s"]}
    # Crowds behave like socket.io-client: an attempt gives up after 20 s (the
    # library's default) and the client tries again with back-off for as long
    # as the phase allows (the generator's patience): slow is a figure.
    patience_ms = 20_000
    msg = {**common, "clients": clients, "senders": senders}
    msg |= {"messages": prof["messages"]}
    crowds = bool(layout.crowd_bams)
    phases = (
        [
            (
                "idle",
                {
                    **common,
                    "phase": "idle",
                    "clients": crowd_clients(layout, prof["idle_n"], room),
                    "hold": prof["hold_s"],
                    "warmupClients": min(10, prof["idle_n"] // 10),
                    "connectConcurrency": 100,
                    "connectTimeout": patience_ms,
                    "ackTimeout": patience_ms,
                },
            ),
            (
                "storm",
                {
                    **common,
                    "phase": "storm",
                    "clients": crowd_clients(layout, prof["storm_n"], room),
                    "connectConcurrency": prof["storm_concurrency"],
                    "connectTimeout": patience_ms,
                    "ackTimeout": patience_ms,
                },
            ),
        ]
        if crowds
        else []
    )
    for workload in ("relay", "chat", "rest"):
        if workload == "rest" and server.kind != "bamchat":
            continue
        extra = {"posters": posters} if workload == "rest" else {}
        rate = prof["rest_rate"] if workload == "rest" else prof["rate"]
        phases.append(
            (
                f"{workload}_closed",
                {**msg, **extra, "phase": workload, "loop": "closed"}
                | {"duration": prof["closed_s"]},
            )
        )
        phases.append(
            (
                f"{workload}_open",
                {**msg, **extra, "phase": workload, "loop": "open"}
                | {"duration": prof["open_s"], "rate": rate},
            )
        )
    return phases


def run_loadgen(config: dict, tmp: Path, name: str, on_mark=None) -> dict:
    """Run one phase of the generator; ``on_mark("start"|"end")`` brackets the
    measured window (the generator waits for it to return)."""
    config = {**config, "handshake": on_mark is not None}
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(config))
    proc = subprocess.Popen(
        ["node", str(BENCH / "loadgen.mjs"), str(path)],
        cwd=BENCH,
        stdin=subprocess.PIPE if on_mark else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    errors: list[str] = []
    drain = threading.Thread(target=lambda: errors.extend(proc.stderr), daemon=True)
    drain.start()
    watchdog = threading.Timer(config["deadline"] + 60, proc.kill)
    watchdog.start()
    result = None
    try:
        for line in proc.stdout:
            if line.startswith("RESULT "):
                result = json.loads(line[7:])
            elif line.startswith("MARK ") and on_mark:
                on_mark(line[5:].strip())
                proc.stdin.write("go\n")
                proc.stdin.flush()
        proc.wait()
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        drain.join(timeout=5)
    if result is not None:
        return result
    tail = "".join(errors)[-800:]
    return {"error": f"load generator failed ({proc.returncode}): {tail}"}


def group_of(phase: str) -> str:
    """Phases of one group share a server; each group gets a fresh one, so that
    the backlog a crowd leaves behind cannot leak into the next figures."""
    return phase if phase in ("idle", "storm") else "messages"


def measure(
    server: Server,
    make_env,
    layout,
    prof,
    tmp: Path,
    logs: Path,
    profiles: Path | None,
    only: set[str] | None = None,
) -> dict:
    """Run every phase against one kind of server, a fresh process per group."""
    results: dict = {}
    groups: dict[str, list] = {}
    for name, config in plan(server, layout, prof):
        if not only or name in only:
            groups.setdefault(group_of(name), []).append((name, config))
    for group, phases in groups.items():
        running = Running(server, make_env(group), logs / f"{server.key}-{group}.log")
        try:
            running.wait_ready()
            log(f"  {server.key:9} up for {group} (pid {running.pid})")
            results.setdefault("deflate", deflate_negotiated(running.url))
            for name, config in phases:
                if running.process.poll() is not None:
                    results[name] = {"error": "server exited:\n" + running.log_tail()}
                    continue
                config |= {
                    "url": running.url,
                    "serverPid": running.pid,
                    "clkTck": os.sysconf("SC_CLK_TCK"),
                    "deadline": prof["deadline_s"],
                }
                t0 = time.monotonic()
                spy = None
                if profiles and server.key != "node" and name in PROFILED:
                    out = profiles / f"{server.key}-{name}.txt"
                    spy = Profiler(running.pid, out)
                try:
                    result = run_loadgen(config, tmp, f"{server.key}-{name}", spy)
                finally:
                    if spy:
                        spy.stop()
                result["wallSeconds"] = time.monotonic() - t0
                results[name] = result
                log(f"  {server.key:9} {name:13} {summary(name, result)}")
        except HarnessError as exc:
            for name, _ in phases:
                results.setdefault(name, {"error": str(exc)})
            log(f"  {server.key}: {exc}")
        finally:
            running.stop()
    return results


def summary(name: str, r: dict) -> str:
    if "error" in r:
        return f"ERROR {r['error'][:200]}"
    if name == "idle":
        return (
            f"{r['kbPerConnection']:.1f} KB/conn ({r['clients']} clients, "
            f"{r['failed']} failed, {r['droppedDuringHold']} dropped)"
        )
    if name == "storm":
        return (
            f"{r['seconds']:.2f}s for {r['clients']} ({r['failed']} failed, "
            f"{r['retries']} retries, "
            f"{r['listenOverflows']} listen overflows)"
        )
    lat = r["latencyMs"]
    return (
        f"{r['deliveredPerS']:.0f}/s, {r['serverCpuUsPerDelivery'] or 0:.1f} µs/msg, "
        f"p50 {lat.get('p50', 0):.1f} p99 {lat.get('p99', 0):.1f} ms, "
        f"lost {r['lost']}, failed {r['failed']}, loadgen {r['loadgenCpuShare']:.0%}"
    )
