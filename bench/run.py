#!/usr/bin/env python3
"""BAM Chat benchmark (issue 6): BAM Chat against Node Socket.IO, side by side.

    python3 bench/run.py            # full run (about 10 minutes)
    python3 bench/run.py --quick    # a few seconds per server (what CI runs)

Servers, measured one at a time in the same run with the same load generator
(``bench/loadgen.mjs``, official ``socket.io-client@4`` under Node):

1. BAM Chat under daphne (``daphne -b 127.0.0.1 -p PORT bamchat.asgi:application``)
2. BAM Chat under uvicorn (``uvicorn bamchat.asgi:application``)
3. a bare python-socketio relay (``bench/servers/py_relay.py``, under uvicorn)
4. a Node ``socket.io@4`` relay (``bench/servers/node_relay.mjs``)

Each BAM Chat server gets a fresh SQLite database (a copy of one template made
once per run through the REST API: migrate, register accounts, create BAMs)
and rate limits lifted so the figures measure the server rather than the
limiter. Workloads, figures and layout are described in ``bench/README.md``.

The table is printed as markdown and written to ``bench/results/latest.md``
(raw figures in ``latest.json``, server logs in ``logs/``). Exit status: 0
when every phase produced its figures (however slow), 1 when the harness
could not measure something (a server did not start, clients could not
connect, the generator failed), 2 on bad usage or a missing environment.
Everything listens and connects on 127.0.0.1 only. Standard library only: it
runs under any Python 3.11+, and starts the servers with the project's
``.venv``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV_BIN = ROOT / ".venv" / "bin"
RESULTS = BENCH / "results"
HOST = "127.0.0.1"
PASSWORD = "bench-horse-battery-staple-42"
LIFTED = "1000000"  # rate limits high enough never to bite
ASGI_APP = "bamchat.asgi:application"
TIMES = "\u00d7"  # the multiplication sign

# Workload sizes. ``room`` members per BAM; ``groups`` rooms of distinct users
# for relay/chat/REST (users = groups * room); ``senders`` per room.
PROFILES = {
    "full": {
        "groups": 10,
        "room": 10,
        "senders": 3,
        "messages": 1_000_000,  # per sender; the duration is what stops a run
        "closed_s": 10,
        "open_s": 10,
        "rate": 10_000,  # deliveries/s for the latency figures
        "rest_rate": 200,  # deliveries/s for REST latency (20 POSTs/s)
        "idle_n": 5000,
        "hold_s": 30,
        "storm_n": 5000,
        "storm_concurrency": 5000,
        "grace_s": 5,
        "quiet_max_s": 60,
        "deadline_s": 300,
    },
    "quick": {  # keeps the harness honest in CI; its figures are only indicative
        "groups": 1,
        "room": 5,
        "senders": 2,
        "messages": 1_000_000,
        "closed_s": 1,
        "open_s": 1,
        "rate": 500,
        "rest_rate": 100,
        "idle_n": 20,
        "hold_s": 0.5,
        "storm_n": 20,
        "storm_concurrency": 20,
        "grace_s": 1,
        "quiet_max_s": 3,
        "deadline_s": 60,
    },
}


@dataclass
class Server:
    key: str
    label: str
    kind: str  # "bamchat" or "relay"
    argv: list[str]  # "{port}" is replaced
    env: dict[str, str] = field(default_factory=dict)


def servers() -> dict[str, Server]:
    py = str(VENV_BIN / "python")
    return {
        "daphne": Server(
            "daphne",
            "BAM Chat (daphne)",
            "bamchat",
            [str(VENV_BIN / "daphne"), "-b", HOST, "-p", "{port}", ASGI_APP],
        ),
        "uvicorn": Server(
            "uvicorn",
            "BAM Chat (uvicorn)",
            "bamchat",
            [str(VENV_BIN / "uvicorn"), ASGI_APP, "--host", HOST, "--port", "{port}"],
        ),
        # Opt-in deployment variants (not in the default run), to measure what
        # server settings alone change: a deep accept queue, no access log, no
        # permessage-deflate, WebSocket-level pings left to Engine.IO.
        "daphne-tuned": Server(
            "daphne-tuned",
            "BAM Chat (daphne, tuned)",
            "bamchat",
            [
                str(VENV_BIN / "daphne"),
                "-e",
                f"tcp:port={{port}}:interface={HOST}:backlog=4096",
                "--ping-interval",
                "300",
                "--websocket_connect_timeout",
                "60",
                "-v",
                "0",
                ASGI_APP,
            ],
        ),
        "uvicorn-tuned": Server(
            "uvicorn-tuned",
            "BAM Chat (uvicorn, tuned)",
            "bamchat",
            [
                str(VENV_BIN / "uvicorn"),
                ASGI_APP,
                *("--host", HOST, "--port", "{port}", "--backlog", "4096"),
                *("--ws-per-message-deflate", "false"),
                *("--no-access-log", "--log-level", "warning"),
            ],
        ),
        "py-relay": Server(
            "py-relay",
            "python-socketio relay",
            "relay",
            [py, str(BENCH / "servers" / "py_relay.py"), "--port", "{port}"],
        ),
        "node": Server(
            "node",
            "Node socket.io relay",
            "relay",
            ["node", str(BENCH / "servers" / "node_relay.mjs"), "--port", "{port}"],
        ),
    }


class HarnessError(Exception):
    """The harness could not measure something."""


_T0 = time.monotonic()


def log(*parts) -> None:
    stamp = f"{time.monotonic() - _T0:6.1f}s"
    print(f"[bench {stamp}]", *parts, file=sys.stderr, flush=True)


# -- environment -------------------------------------------------------------------
def raise_fd_limit() -> int:
    """Let this process and its children (servers, generator) hold many sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1_048_576
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def ensure_npm() -> None:
    """``npm ci`` into bench/node_modules when missing or older than the lock file."""
    lock = BENCH / "package-lock.json"
    stamp = BENCH / "node_modules" / ".bench-lock-sha256"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text().strip() == digest:
        return
    log("installing the generator's npm dependencies (npm ci)")
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=BENCH,
        check=True,
        stdout=sys.stderr,
    )
    stamp.write_text(digest + "\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def command_output(argv: list[str], **kw) -> str:
    try:
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=30, **kw
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def machine() -> dict:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = f"{int(line.split()[1]) / 1024 / 1024:.0f}"
    except OSError:
        pass
    versions = command_output(
        [
            str(VENV_BIN / "python"),
            "-c",
            "import importlib.metadata as m, sys; print(sys.version.split()[0], "
            "*[m.version(p) for p in ('django', 'python-socketio', "
            "'python-engineio', 'daphne', 'uvicorn', 'channels')])",
        ]
    ).split()
    versions += ["?"] * (7 - len(versions))

    def npm_version(name: str) -> str:
        try:
            meta = BENCH / "node_modules" / name / "package.json"
            return json.loads(meta.read_text())["version"]
        except (OSError, ValueError, KeyError):
            return "?"

    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memGb": mem_gb,
        "kernel": platform.release(),
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
        "python": versions[0],
        "django": versions[1],
        "pythonSocketio": versions[2],
        "pythonEngineio": versions[3],
        "daphne": versions[4],
        "uvicorn": versions[5],
        "channels": versions[6],
        "node": command_output(["node", "--version"]),
        "commit": command_output(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]
        ),
        "socketio": npm_version("socket.io"),
        "socketioClient": npm_version("socket.io-client"),
    }


# -- servers --------------------------------------------------------------------------
class Running:
    """One server process on 127.0.0.1."""

    def __init__(self, server: Server, env: dict[str, str], log_path: Path) -> None:
        self.server = server
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        argv = [a.replace("{port}", str(self.port)) for a in server.argv]
        self.log_path = log_path
        self._log = open(log_path, "w")  # closed in stop()
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.pid = self.process.pid

    def wait_ready(self, timeout: float = 60) -> None:
        until = time.monotonic() + timeout
        while time.monotonic() < until:
            if self.process.poll() is not None:
                raise HarnessError(
                    f"{self.server.label} exited ({self.process.returncode}):\n"
                    + self.log_tail()
                )
            try:
                urllib.request.urlopen(f"{self.url}/health", timeout=2).close()
                return
            except urllib.error.HTTPError:
                return  # it answers HTTP: it is up
            except OSError:
                time.sleep(0.1)
        raise HarnessError(f"{self.server.label} did not answer within {timeout}s")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self._log.close()


def deflate_negotiated(url: str) -> bool | None:
    """Whether the server accepts permessage-deflate when a client offers it."""
    port = int(url.rsplit(":", 1)[1])
    request = (
        f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
        f"Host: {HOST}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
    )
    try:
        with socket.create_connection((HOST, port), timeout=5) as s:
            s.sendall(request.encode())
            data = b""
            while b"\r\n\r\n" not in data and len(data) < 65536:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
    if " 101 " not in head.split("\r\n", 1)[0] + " ":
        return None
    return "permessage-deflate" in head


# -- BAM Chat accounts and BAMs ---------------------------------------------------
def http_json(base: str, method: str, path: str, body=None, token=None):
    """One REST call; a throttled one (429) is retried after the wait it asks for."""
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    for _attempt in range(30):
        req = urllib.request.Request(
            base + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            if exc.code != 429:
                raise HarnessError(
                    f"{method} {path} -> {exc.code}: {exc.read()[:300]!r}"
                ) from None
            wait = float(exc.headers.get("Retry-After") or 1)
            log(f"{method} {path} throttled; retrying in {wait:.0f}s")
            time.sleep(min(max(wait, 0.5), 10))
    raise HarnessError(f"{method} {path}: still throttled after 30 attempts")


@dataclass
class Layout:
    """Who is where: users in groups of ``room``; each group has a work BAM."""

    users: list[dict]  # {id, token}
    groups: list[list[int]]  # user indexes per group
    work_bams: list[str]  # one per group
    crowd_bams: list[str]  # for idle/storm: N / room BAMs, group b % groups


def bamchat_env(sqlite_path: str, secret: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")
    }
    env.update(
        SQLITE_PATH=sqlite_path,
        DJANGO_SECRET_KEY=secret,
        DJANGO_DEBUG="0",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        JWT_ACCESS_MINUTES="720",
        RATE_SEND_BURST=LIFTED,
        RATE_SEND_PER_S=LIFTED,
        RATE_TYPING_BURST=LIFTED,
        RATE_TYPING_PER_S=LIFTED,
        RATE_JOIN_BURST=LIFTED,
        RATE_JOIN_PER_S=LIFTED,
        REST_WRITE_RATE=f"{LIFTED}/s",
        REGISTER_RATE=f"{LIFTED}/s",
        PYTHONUNBUFFERED="1",
    )
    return env


def prepare_bamchat(
    tmp: Path, secret: str, prof: dict, logs: Path, crowds: bool = True
) -> Layout:
    """Make the template database: migrate, then accounts and BAMs over REST."""
    template = tmp / "template.sqlite3"
    env = bamchat_env(str(template), secret)
    t0 = time.monotonic()
    subprocess.run(
        [str(VENV_BIN / "python"), "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    log(f"migrated the template database in {time.monotonic() - t0:.1f}s")
    setup = Running(servers()["daphne"], env, logs / "setup-daphne.log")
    try:
        setup.wait_ready()
        log("setup server up; registering accounts")
        n_users = prof["groups"] * prof["room"]
        run_id = secrets.token_hex(3)

        def account(i: int) -> dict:
            name = f"bench{run_id}_{i}"
            user = http_json(
                setup.url,
                "POST",
                "/auth/register",
                {"username": name, "password": PASSWORD},
            )
            pair = http_json(
                setup.url,
                "POST",
                "/auth/token",
                {"username": name, "password": PASSWORD},
            )
            return {"id": str(user["id"]), "token": pair["access"]}

        with ThreadPoolExecutor(max_workers=4) as pool:
            users = list(pool.map(account, range(n_users)))
        groups = [
            list(range(g * prof["room"], (g + 1) * prof["room"]))
            for g in range(prof["groups"])
        ]

        def bam(args: tuple[str, int]) -> str:
            title, g = args
            owner, *others = groups[g]
            made = http_json(
                setup.url,
                "POST",
                "/bams",
                {"title": title, "participantIds": [users[o]["id"] for o in others]},
                token=users[owner]["token"],
            )
            return str(made["id"])

        crowd = max(prof["idle_n"], prof["storm_n"]) // prof["room"] if crowds else 0
        with ThreadPoolExecutor(max_workers=4) as pool:
            work = list(pool.map(bam, [(f"work {g}", g) for g in range(len(groups))]))
            crowd_bams = list(
                pool.map(bam, [(f"crowd {b}", b % len(groups)) for b in range(crowd)])
            )
    finally:
        setup.stop()
    log(
        f"BAM Chat template: {n_users} accounts, {len(work) + len(crowd_bams)} BAMs "
        f"in {time.monotonic() - t0:.1f}s"
    )
    return Layout(users, groups, work, crowd_bams)


def relay_layout(prof: dict) -> Layout:
    """The same layout for the relays: a token is just the user id."""
    n_users = prof["groups"] * prof["room"]
    users = [{"id": str(i + 1), "token": str(i + 1)} for i in range(n_users)]
    groups = [
        list(range(g * prof["room"], (g + 1) * prof["room"]))
        for g in range(prof["groups"])
    ]
    crowd = max(prof["idle_n"], prof["storm_n"]) // prof["room"]
    return Layout(
        users,
        groups,
        [str(g + 1) for g in range(len(groups))],
        [str(1000 + b) for b in range(crowd)],
    )


def copy_database(src: Path, dst: Path) -> None:
    """A consistent copy (WAL included) of an SQLite database."""
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    a.close()
    b.close()


# -- phases ------------------------------------------------------------------------
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


PHASES = (
    "idle",
    "storm",
    *(f"{w}_{loop}" for w in ("relay", "chat", "rest") for loop in ("closed", "open")),
)
PROFILED = ("idle", "storm", "relay_closed", "chat_closed", "rest_closed")


class Profiler:
    """py-spy sampling a server during a phase's measured window (``--profile``).

    Extra py-spy arguments (e.g. ``--gil``) come from ``BENCH_PYSPY_ARGS``.
    """

    def __init__(self, pid: int, out: Path) -> None:
        self.pid = pid
        self.first = self.out = out
        self.proc: subprocess.Popen | None = None

    def __call__(self, what: str) -> None:
        """``start [label]`` opens a window (``label`` names a second file for
        the phase, e.g. the idle hold), ``end`` closes it."""
        what, _, label = what.partition(" ")
        if what == "start" and self.proc is None:
            self.out = self.first.with_name(
                f"{self.first.stem}-{label}.txt" if label else self.first.name
            )
            argv = [str(VENV_BIN / "py-spy"), "record", "--pid", str(self.pid)]
            # Blocking mode (py-spy pauses the process for each sample): slower,
            # but it tells idle threads apart, so samples follow CPU time.
            argv += ["--format", "raw", "--rate", "100"]
            argv += os.environ.get("BENCH_PYSPY_ARGS", "").split()
            self.proc = subprocess.Popen(
                [*argv, "-o", str(self.out)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(0.5)  # let it attach before the window opens
        elif what == "end":
            self.stop()

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        if self.out.exists():
            from profile_summary import summarize

            summary = self.out.with_suffix(".summary.txt")
            summary.write_text(summarize(self.out) + "\n")


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


# -- the table ---------------------------------------------------------------------
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


# -- main --------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(
        description="BAM Chat vs Node Socket.IO, side by side (issue 6)."
    )
    parser.add_argument("--quick", action="store_true", help="seconds per server")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the Python servers with py-spy (pip install py-spy into .venv) "
        "during storm and closed-loop phases; stacks and summaries go to "
        "bench/results/profiles/ (figures of a profiled run are perturbed)",
    )
    parser.add_argument(
        "--servers",
        default="daphne,uvicorn,py-relay,node",
        help="comma-separated subset of: daphne, uvicorn, py-relay, node "
        "(also daphne-tuned, uvicorn-tuned: the same BAM Chat with deployment "
        "settings that matter for the figures)",
    )
    parser.add_argument(
        "--phases",
        help=f"comma-separated subset of: {', '.join(PHASES)} (default: all)",
    )
    args = parser.parse_args()
    only = None
    if args.phases:
        only = {p.strip() for p in args.phases.split(",") if p.strip()}
        if not only or not only <= set(PHASES):
            parser.error(f"--phases: choose among {', '.join(PHASES)}")
    known = servers()
    order = [s.strip() for s in args.servers.split(",") if s.strip()]
    if not order or any(s not in known for s in order):
        parser.error(f"--servers: choose among {', '.join(known)}")
    prof = PROFILES["quick" if args.quick else "full"]
    if not (VENV_BIN / "python").exists():
        log(f"no project virtualenv at {VENV_BIN.parent}; see the README's setup")
        return 2
    if shutil.which("node") is None or shutil.which("npm") is None:
        log("node and npm are required")
        return 2
    started = time.monotonic()
    fds = raise_fd_limit()
    if fds < max(prof["idle_n"], prof["storm_n"]) * 2 + 100:
        log(f"warning: open-file limit {fds} may be too low for this run")
    ensure_npm()
    info = machine()
    RESULTS.mkdir(exist_ok=True)
    logs = RESULTS / "logs"
    logs.mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="bamchat-bench-"))
    profiles = None
    if args.profile:
        profiles = RESULTS / "profiles"
        profiles.mkdir(exist_ok=True)
        if not (VENV_BIN / "py-spy").exists():
            log("--profile: py-spy is not in .venv (.venv/bin/pip install py-spy)")
            return 2
    all_results: dict = {}
    broken = False
    try:
        secret = secrets.token_urlsafe(50)
        bam_layout = None
        if any(known[k].kind == "bamchat" for k in order):
            try:
                crowds = only is None or bool(only & {"idle", "storm"})
                bam_layout = prepare_bamchat(tmp, secret, prof, logs, crowds)
            except (HarnessError, subprocess.CalledProcessError) as exc:
                log(f"could not prepare BAM Chat: {exc}")
                broken = True
        for key in order:
            server = known[key]
            log(f"measuring {server.label}")
            if server.kind == "bamchat":
                if bam_layout is None:
                    all_results[key] = {"error": "BAM Chat setup failed"}
                    continue
                layout = bam_layout

                def make_env(group: str, key=key) -> dict[str, str]:
                    db = tmp / f"{key}-{group}.sqlite3"
                    copy_database(tmp / "template.sqlite3", db)
                    return bamchat_env(str(db), secret)
            else:
                layout = relay_layout(prof)

                def make_env(group: str) -> dict[str, str]:
                    return {**os.environ, "PYTHONUNBUFFERED": "1"}

            all_results[key] = measure(
                server, make_env, layout, prof, tmp, logs, profiles, only
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for res in all_results.values():
        if "error" in res or any(
            isinstance(v, dict) and "error" in v for v in res.values()
        ):
            broken = True
    markdown = table(all_results, order, prof, info)
    elapsed = time.monotonic() - started
    markdown += f"\n\nTotal benchmark time: {elapsed:.0f} s.\n"
    (RESULTS / "latest.md").write_text(markdown)
    (RESULTS / "latest.json").write_text(
        json.dumps({"machine": info, "profile": prof, "results": all_results}, indent=1)
    )
    print(markdown)
    log(f"written {RESULTS / 'latest.md'} ({elapsed:.0f} s)")
    if broken:
        log("some figures could not be measured (see 'error' above)")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
