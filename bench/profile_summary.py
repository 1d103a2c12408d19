"""Summarise a py-spy ``--format raw`` profile (collapsed stacks) as text.

    python3 bench/profile_summary.py results/profiles/daphne-chat_closed.txt

Prints where the samples go: by package of the innermost frame (self time), by
area of the code base (the innermost frame that belongs to a known area), and the
functions with the most inclusive time. Standard library only.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")

# Areas, tried from the innermost frame outwards; the first that matches wins.
AREAS = [
    ("SQLite (C calls: execute, commit)", r"sqlite3/|django/db/backends/sqlite3/"),
    ("Django ORM (query building, model code)", r"django/db/"),
    (
        "DRF / Django request handling",
        r"rest_framework/|django/(core|middleware|urls|http|contrib)/",
    ),
    ("Django transaction/on_commit", r"django/db/transaction"),
    ("JWT / auth", r"rest_framework_simplejwt/|jwt/|realtime/auth"),
    ("JSON encode/decode", r"json/"),
    ("channel layer (channels)", r"channels/"),
    (
        "asgiref sync<->async hops, thread pool",
        r"asgiref/|concurrent/futures|threading\.py",
    ),
    ("socket.io protocol (python-socketio)", r"socketio/"),
    ("engine.io protocol (python-engineio)", r"engineio/"),
    ("websocket server: autobahn", r"autobahn/"),
    ("HTTP/websocket server: twisted/daphne", r"twisted/|daphne/"),
    ("websocket server: wsproto/uvicorn", r"wsproto/|uvicorn/|h11/"),
    ("permessage-deflate (zlib)", r"zlib|deflate"),
    ("BAM Chat realtime/", r"/realtime/"),
    ("BAM Chat messaging/ accounts/ bamchat/", r"/(messaging|accounts|bamchat)/"),
    ("asyncio event loop, socket I/O", r"asyncio/"),
    ("logging", r"logging/"),
]
AREA_RES = [(name, re.compile(pattern)) for name, pattern in AREAS]
SKIP = {"<module>", "run", "_run_once", "_run", "run_forever", "run_until_complete"}


def parse(path: Path) -> list[tuple[list[tuple[str, str]], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        body, _, count = line.rpartition(" ")
        if not body or not count.isdigit():
            continue
        frames = []
        for raw in body.split(";"):
            m = FRAME.match(raw.strip())
            frames.append((m["func"], m["file"]) if m else (raw.strip(), ""))
        stacks.append((frames, int(count)))
    return stacks


def package(file: str) -> str:
    """The package (or stdlib module) a frame's file belongs to."""
    if "site-packages/" in file:
        return file.split("site-packages/", 1)[1].split("/", 1)[0]
    m = re.search(r"python3\.\d+/(\w+)", file)
    if m:
        return m[1]
    if "/" in file and not file.startswith("/"):  # py-spy's short file names
        return file.split("/", 1)[0]
    return Path(file).name or "?"


def summarize(path: Path, top: int = 25) -> str:
    stacks = parse(path)
    total = sum(c for _, c in stacks) or 1
    leaf_pkg: Counter[str] = Counter()
    area: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, count in stacks:
        leaf_pkg[package(frames[-1][1])] += count
        for _func, fl in reversed(frames):
            name = next((n for n, rx in AREA_RES if rx.search(fl)), None)
            if name:
                area[name] += count
                break
        else:
            area["other"] += count
        seen = set()
        for f, fl in frames:
            if f in SKIP:
                continue
            key = f"{f} ({short(fl)})"
            if key not in seen:
                seen.add(key)
                inclusive[key] += count

    def block(title: str, counter: Counter[str], n: int) -> list[str]:
        lines = [title]
        for name, c in counter.most_common(n):
            lines.append(f"  {100 * c / total:5.1f}%  {name}")
        return lines

    out = [f"{path.name}: {total} samples"]
    out += block("Self time by package (innermost frame):", leaf_pkg, 15)
    out += block("By area (innermost frame in a known area):", area, len(AREAS) + 1)
    out += block("Inclusive time by function:", inclusive, top)
    return "\n".join(out)


def short(file: str) -> str:
    if "site-packages/" in file:
        return file.split("site-packages/", 1)[1]
    for marker in ("/work/main/", "/lib/python3"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(summarize(Path(arg)))
        print()
