"""What the machine itself charges for running two busy processes at once.

Two server processes on a machine of two CPUs run at the same moments, each on
its own CPU, beside PostgreSQL, Redis and the load generator. On a virtual
machine two CPUs may share one physical core, its caches or its memory
bandwidth, and then the same instructions take more CPU time when both CPUs are
busy. The cluster's CPU per delivery is measured on such a machine, so the
harness measures that charge too, in the same run: a fixed piece of
interpreter work (JSON, dicts, strings, calls, what a server's event path is
made of) run alone, then two copies at once, each counting its own CPU time.
``penalty`` is what two copies spend together over twice what one spends alone:
1.00 when the CPUs are independent.

    python3 bench/harness/corun.py WORK   # one copy; prints its CPU seconds
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from statistics import median

WORK = 150_000  # about half a second of CPU for one copy on a 2026 server core
TRIES = 2


def work(n: int) -> int:
    """The fixed work: the same instructions every time for the same ``n``."""
    payload = {
        "bamId": "42",
        "seq": 0,
        "content": "hello world " * 5,
        "sender": {"id": "7", "username": "user7"},
    }
    total = 0
    for i in range(n):
        payload["seq"] = i
        text = json.dumps(payload)
        back = json.loads(text)
        total += len(text) + sum(range(40)) + len([k for k in back if k != "seq"])
    return total


def _copies(python: str, count: int) -> list[float]:
    """CPU seconds of ``count`` copies of the work started together."""
    procs = [
        subprocess.Popen(
            [python, __file__, str(WORK)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(count)
    ]
    out = []
    for proc in procs:
        stdout, _ = proc.communicate(timeout=120)
        if proc.returncode:
            raise RuntimeError(f"corun: a copy exited with {proc.returncode}")
        out.append(float(stdout.split()[0]))
    return out


def penalty(python: str = sys.executable) -> float | None:
    """Two copies at once ÷ twice one alone, CPU time (median of ``TRIES``,
    alone and together taking turns); None when it could not be measured."""
    try:
        ratios = []
        for _ in range(TRIES):
            alone = _copies(python, 1)[0]
            both = sum(_copies(python, 2))
            ratios.append(both / (2 * alone))
        return median(ratios)
    except (OSError, RuntimeError, ValueError, subprocess.SubprocessError):
        return None


if __name__ == "__main__":
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit(f"usage: {Path(__file__).name} WORK")
    started = time.process_time()
    work(int(sys.argv[1]))
    sys.stdout.write(f"{time.process_time() - started:.4f}\n")
