"""Where things are, the workload profiles and the servers under test."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
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


PHASES = (
    "idle",
    "storm",
    *(f"{w}_{loop}" for w in ("relay", "chat", "rest") for loop in ("closed", "open")),
)
PROFILED = ("idle", "storm", "relay_closed", "chat_closed", "rest_closed")
