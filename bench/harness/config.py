"""Where things are, the workload profiles, the phases and the servers under test."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
ROOT = BENCH.parent
VENV_BIN = ROOT / ".venv" / "bin"
RESULTS = BENCH / "results"
HOST = "127.0.0.1"
PASSWORD = "bench-horse-battery-staple-42"
LIFTED = "1000000"  # rate limits high enough never to bite
ASGI_APP = "bamchat.asgi:application"
TIMES = "\u00d7"  # the multiplication sign
# PostgreSQL (an admin connection: the bench makes and drops its own databases)
# and the Redis database index the bench owns (flushed before each server start).
PG_URL = "postgres://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/10"

# Workload sizes. ``room`` members per BAM; ``groups`` rooms of distinct users
# for relay/chat/REST (users = groups * room); ``senders`` per room. Rates are
# deliveries per second offered by the open loops; the overload phase offers
# twice the server's own closed-loop chat figure. ``fresh`` phases get a server
# of their own (a backlog they leave must not reach the next phase).
PROFILES = {
    "full": {
        "mode": "full",
        "groups": 10,
        "room": 10,
        "senders": 3,
        "messages": 1_000_000,  # per sender; the duration is what stops a run
        "closed_s": 10,
        "open_s": 10,
        "relay_rate": 10_000,
        "chat_rates": (1000, 5000),  # chat_open_1k, chat_open_5k
        "rest_rate": 200,  # 20 POSTs/s
        "overload_s": 30,
        "recovery_max_s": 60,
        "probe_ms": 50,
        "idle_n": 5000,
        "hold_s": 30,
        "storm_n": 5000,
        "storm_concurrency": 5000,
        "patience_s": 90,  # idle, storm: how long a client retries at most
        "grace_s": 5,
        "quiet_max_s": 60,
        "deadline_s": 300,
        "fresh": ("chat_open_5k", "overload"),
    },
    "quick": {  # keeps the harness honest in CI; its figures are only indicative
        "mode": "quick",
        "groups": 1,
        "room": 5,
        "senders": 2,
        "messages": 1_000_000,
        "closed_s": 1,
        "open_s": 1,
        "relay_rate": 500,
        "chat_rates": (200, 500),
        "rest_rate": 100,
        "overload_s": 2,
        "recovery_max_s": 10,
        "probe_ms": 50,
        "idle_n": 20,
        "hold_s": 0.5,
        "storm_n": 20,
        "storm_concurrency": 20,
        "patience_s": 30,
        "grace_s": 1,
        "quiet_max_s": 3,
        "deadline_s": 60,
        "fresh": (),
    },
}

# Every phase, in the order they run on a server.
PHASES = (
    "idle",
    "storm",
    "relay_closed",
    "relay_open",
    "chat_closed",
    "rest_closed",
    "rest_open",
    "chat_open_1k",
    "chat_open_5k",
    "overload",
)
PROFILED = (
    "idle",
    "storm",
    "relay_closed",
    "chat_closed",
    "rest_closed",
    "chat_open_1k",
    "chat_open_5k",
)
_BAMCHAT_DEFAULT = (
    "idle",
    "storm",
    "chat_closed",
    "chat_open_1k",
    "chat_open_5k",
    "overload",
)
_RELAYS_CANNOT = ("rest_closed", "rest_open", "overload")


@dataclass
class Server:
    key: str
    label: str
    kind: str  # "bamchat" or "relay"
    argv: list[str]  # "{port}" is replaced
    # BAM Chat: "sqlite" (embedded default) or "pg" (PG + Redis); a relay:
    # "redis" (python-socketio's Redis manager) or "" (one process, no queue)
    backend: str = ""
    processes: int = 1
    one_process: str = ""  # several processes: the server that is one of them
    phases: tuple[str, ...] = _BAMCHAT_DEFAULT  # run when --phases is not given

    def can_run(self, phase: str) -> bool:
        return self.kind == "bamchat" or phase not in _RELAYS_CANNOT


def daphne(backlog: bool = True) -> list[str]:
    """BAM Chat under daphne; with ``backlog``, the README's production command."""
    if backlog:
        endpoint = ["-e", f"tcp:port={{port}}:interface={HOST}:backlog=4096"]
    else:
        endpoint = ["-b", HOST, "-p", "{port}"]
    return [str(VENV_BIN / "daphne"), *endpoint, ASGI_APP]


RELAY_UNDER_DAPHNE = [*daphne()[:-1], "bench.servers.py_relay:application"]
_SCALING = ("chat_closed", "chat_open_1k", "chat_open_5k")


def two_of(one: Server, key: str, label: str) -> Server:
    """Two processes of server ``one`` (clients alternating between them),
    compared with it; the phases that measure what a second process costs."""
    return replace(
        one, key=key, label=label, processes=2, one_process=one.key, phases=_SCALING
    )


def servers() -> dict[str, Server]:
    py = str(VENV_BIN / "python")
    known = _servers(py)
    # Two processes of BAM Chat on PG+Redis; and (opt-in) the bare relay through
    # python-socketio's own Redis message queue, as one process and as two: what
    # the library itself pays for a second process, beside the cluster's ratio.
    known["cluster"] = two_of(
        known["daphne-pg"], "cluster", "BAM Chat (2 daphne, PG+Redis)"
    )
    known["py-relay-redis"] = replace(
        known["py-relay"],
        key="py-relay-redis",
        label="python-socketio relay (daphne, Redis manager)",
        backend="redis",
        phases=_SCALING,
    )
    known["py-relay-cluster"] = two_of(
        known["py-relay-redis"],
        "py-relay-cluster",
        "python-socketio relay (2 daphne, Redis manager)",
    )
    return known


def _servers(py: str) -> dict[str, Server]:
    return {
        "daphne": Server(
            "daphne", "BAM Chat (daphne, SQLite)", "bamchat", daphne(), "sqlite"
        ),
        "daphne-pg": Server(
            "daphne-pg", "BAM Chat (daphne, PG+Redis)", "bamchat", daphne(), "pg"
        ),
        # Opt-in variants (not in the default run): daphne's default accept
        # queue of 50; uvicorn; and server settings that matter for the figures.
        "daphne-default": Server(
            "daphne-default",
            "BAM Chat (daphne, backlog 50, SQLite)",
            "bamchat",
            daphne(backlog=False),
            "sqlite",
        ),
        "uvicorn": Server(
            "uvicorn",
            "BAM Chat (uvicorn, SQLite)",
            "bamchat",
            [str(VENV_BIN / "uvicorn"), ASGI_APP, "--host", HOST, "--port", "{port}"],
            "sqlite",
        ),
        "daphne-tuned": Server(
            "daphne-tuned",
            "BAM Chat (daphne, tuned, SQLite)",
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
            "sqlite",
        ),
        "uvicorn-tuned": Server(
            "uvicorn-tuned",
            "BAM Chat (uvicorn, tuned, SQLite)",
            "bamchat",
            [
                str(VENV_BIN / "uvicorn"),
                ASGI_APP,
                *("--host", HOST, "--port", "{port}", "--backlog", "4096"),
                *("--ws-per-message-deflate", "false"),
                *("--no-access-log", "--log-level", "warning"),
            ],
            "sqlite",
        ),
        "py-relay": Server(
            "py-relay",
            "python-socketio relay (daphne)",
            "relay",
            RELAY_UNDER_DAPHNE,
            phases=("idle", "storm", "relay_closed", "chat_closed"),
        ),
        "py-relay-uvicorn": Server(
            "py-relay-uvicorn",
            "python-socketio relay (uvicorn)",
            "relay",
            [py, str(BENCH / "servers" / "py_relay.py"), "--port", "{port}"],
            phases=("idle", "storm", "relay_closed", "chat_closed"),
        ),
        "node": Server(
            "node",
            "Node socket.io relay",
            "relay",
            ["node", str(BENCH / "servers" / "node_relay.mjs"), "--port", "{port}"],
            phases=(
                "idle",
                "storm",
                "relay_closed",
                "chat_closed",
                "chat_open_1k",
                "chat_open_5k",
            ),
        ),
    }


DEFAULT_SERVERS = ("daphne", "daphne-pg", "cluster", "py-relay", "node")


class HarnessError(Exception):
    """The harness could not measure something."""


_T0 = time.monotonic()


def log(*parts) -> None:
    stamp = f"{time.monotonic() - _T0:6.1f}s"
    print(f"[bench {stamp}]", *parts, file=sys.stderr, flush=True)
