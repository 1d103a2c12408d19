"""The load generator's phases: what each runs, and running them against a server."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .config import BENCH, PHASES, PROFILED, HarnessError, Server, log
from .layout import Layout
from .processes import Profiling, Running, deflate_negotiated


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


def plan(
    server: Server, layout: Layout, prof: dict, only: set[str]
) -> list[tuple[str, dict | Callable[[dict], dict]]]:
    """The generator configs of the phases ``only`` (in the order they run).

    A config may be a function of the server's results so far: the overload
    phase offers twice what this server delivered in its closed chat loop."""
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
    # library's default) and the client tries again with back-off for up to
    # ``patience_s`` (bounded by the phase's deadline): slow is a figure.
    attempt_ms = 20_000
    crowd = {"patience": prof["patience_s"]}
    msg = {**common, "clients": clients, "senders": senders}
    msg |= {"messages": prof["messages"]}
    configs: dict[str, dict | Callable[[dict], dict]] = {}
    if layout.crowd_bams:
        configs["idle"] = {
            **common,
            "phase": "idle",
            "clients": crowd_clients(layout, prof["idle_n"], room),
            "hold": prof["hold_s"],
            "warmupClients": min(10, prof["idle_n"] // 10),
            **crowd,
            "connectConcurrency": 100,
            "connectTimeout": attempt_ms,
            "ackTimeout": attempt_ms,
        }
        configs["storm"] = {
            **common,
            "phase": "storm",
            "clients": crowd_clients(layout, prof["storm_n"], room),
            **crowd,
            "connectConcurrency": prof["storm_concurrency"],
            "connectTimeout": attempt_ms,
            "ackTimeout": attempt_ms,
        }
    closed = {"loop": "closed", "duration": prof["closed_s"]}
    open_ = {"loop": "open", "duration": prof["open_s"]}
    rest = {"phase": "rest", "posters": posters}
    configs["relay_closed"] = {**msg, "phase": "relay", **closed}
    configs["relay_open"] = {**msg, "phase": "relay", **open_} | {
        "rate": prof["relay_rate"]
    }
    configs["chat_closed"] = {**msg, "phase": "chat", **closed}
    configs["rest_closed"] = {**msg, **rest, **closed}
    configs["rest_open"] = {**msg, **rest, **open_, "rate": prof["rest_rate"]}
    for name, rate in zip(
        ("chat_open_1k", "chat_open_5k"), prof["chat_rates"], strict=True
    ):
        configs[name] = {**msg, "phase": "chat", **open_, "rate": rate}

    def overload(results: dict) -> dict:
        base = results.get("chat_closed") or {}
        sustained = base.get("deliveredPerS")
        if not sustained:
            return {"error": "no chat_closed figure of this server to double"}
        window_s = prof["overload_s"] + prof["recovery_max_s"]
        return {
            **msg,
            "phase": "chat",
            "loop": "overload",
            "duration": prof["overload_s"],
            "rate": 2 * sustained,
            "recoveryMax": prof["recovery_max_s"],
            "probeMs": prof["probe_ms"],
            # A slow ack is a figure, not a loss: wait for it until the end.
            "ackTimeout": (window_s + 10) * 1000,
        }

    configs["overload"] = overload
    return [(name, configs[name]) for name in PHASES if name in only]


def phases_for(server: Server, only: set[str] | None) -> list[str]:
    """What runs on ``server``: its defaults, or ``only`` where it can; the
    overload phase brings the closed chat loop whose figure it doubles."""
    chosen = set(server.phases if only is None else only)
    chosen = {p for p in chosen if server.can_run(p)}
    if "overload" in chosen:
        chosen.add("chat_closed")
    return [p for p in PHASES if p in chosen]


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


def group_of(phase: str, prof: dict) -> str:
    """Phases of one group share a server; each group gets a fresh one, so that
    the backlog a crowd or an overload leaves behind cannot leak into the next
    figures."""
    if phase in ("idle", "storm") or phase in prof["fresh"]:
        return phase
    return "messages"


def measure(
    server: Server,
    make_env,
    layout,
    prof,
    tmp: Path,
    logs: Path,
    profiling: Profiling | None,
    only: list[str],
    check=None,
) -> dict:
    """Run the phases ``only`` against one kind of server, a fresh server (one
    or more processes) per group. ``check()``, after each group, says why its
    figures cannot be trusted (or None)."""
    results: dict = {}
    groups: dict[str, list] = {}
    for name, config in plan(server, layout, prof, set(only)):
        groups.setdefault(group_of(name, prof), []).append((name, config))
    for group, phases in groups.items():
        env = None
        running: list[Running] = []
        try:
            env = make_env(group)
            if profiling:
                env = profiling.env(env)
            for i in range(server.processes):
                suffix = f"-{i + 1}" if server.processes > 1 else ""
                log_path = logs / f"{server.key}-{group}{suffix}.log"
                running.append(Running(server, env, log_path))
            for proc in running:
                proc.wait_ready()
            pids = [proc.pid for proc in running]
            log(f"  {server.key:9} up for {group} (pid {', '.join(map(str, pids))})")
            results.setdefault("deflate", deflate_negotiated(running[0].url))
            for name, config in phases:
                dead = [proc for proc in running if proc.process.poll() is not None]
                if dead:
                    results[name] = {"error": "server exited:\n" + dead[0].log_tail()}
                    continue
                if callable(config):
                    config = config(results)
                    if "error" in config:
                        results[name] = config
                        log(f"  {server.key:9} {name:13} {summary(name, config)}")
                        continue
                config = config | {
                    "urls": [proc.url for proc in running],
                    "serverPids": pids,
                    "clkTck": os.sysconf("SC_CLK_TCK"),
                    "deadline": prof["deadline_s"],
                }
                t0 = time.monotonic()
                spies = []
                if profiling and server.key != "node" and name in PROFILED:
                    for i, pid in enumerate(pids):
                        suffix = f"-p{i + 1}" if len(pids) > 1 else ""
                        out = profiling.folder / f"{server.key}-{name}{suffix}.txt"
                        spies.append(profiling.attach(pid, out))

                def on_mark(what: str, spies=spies) -> None:
                    for spy in spies:
                        spy(what)

                try:
                    result = run_loadgen(
                        config, tmp, f"{server.key}-{name}", on_mark if spies else None
                    )
                finally:
                    for spy in spies:
                        spy.stop()
                result["wallSeconds"] = time.monotonic() - t0
                results[name] = result
                log(f"  {server.key:9} {name:13} {summary(name, result)}")
            problem = check() if check else None
            if problem:
                log(f"  {server.key}: {problem}")
                for name, _ in phases:
                    results[name] = {"error": problem, "discarded": results.get(name)}
        except (HarnessError, OSError) as exc:
            for name, _ in phases:
                results.setdefault(name, {"error": str(exc)})
            log(f"  {server.key}: {exc}")
        finally:
            for proc in running:
                proc.stop()
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
    if "overload" in r:
        o = r["overload"]
        ack = r["ackLatencyMs"]
        back = o["recoverySeconds"]
        return (
            f"{r['targetRate']:.0f}/s offered for {r['sendSeconds']:.0f}s, "
            f"{o['deliveredDuringLoadPerS']:.0f}/s delivered meanwhile; "
            f"RSS {o['rssBeforeKb'] / 1024:.0f}/{o['rssPeakKb'] / 1024:.0f}/"
            f"{o['rssAfterKb'] / 1024:.0f} MB; ack p50 {ack.get('p50', 0):.0f} "
            f"p99 {ack.get('p99', 0):.0f} ms; lost {o['lostMessages']} "
            f"(pending {o['pendingMessages']}, drops {r.get('drops')}); "
            + (f"back in {back:.1f}s" if back is not None else "not back")
        )
    return (
        f"{r['deliveredPerS']:.0f}/s, {r['serverCpuUsPerDelivery'] or 0:.1f} µs/msg"
        + (
            f" ({r['serverKernelShare']:.0%} kernel, "
            f"{r.get('serverLoopShare') or 0:.0%} event loop), "
            if r.get("serverKernelShare") is not None
            else ", "
        )
        + f"p50 {lat.get('p50', 0):.1f} p99 {lat.get('p99', 0):.1f} ms, "
        f"lost {r['lost']}, failed {r['failed']}, loadgen {r['loadgenCpuShare']:.0%}"
        + (
            f", machine {r['machineBusyShare']:.0%} busy"
            if r.get("machineBusyShare") is not None
            else ""
        )
    )
