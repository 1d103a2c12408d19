"""The machine: open-file limit, npm dependencies, ports, versions."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import resource
import socket
import subprocess
import sys
from pathlib import Path

from .config import BENCH, HOST, ROOT, VENV_BIN, log


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
