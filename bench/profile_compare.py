"""Read the CPU profiles of ``bench/run.py --profile cpu``, alone or side by side.

    python3 bench/profile_compare.py A.pstat                  # one summary
    python3 bench/profile_compare.py A.pstat B1.pstat B2.pstat  # A against B1+B2

A profile holds, per function, the CPU time spent in its own code and how often
it was called (yappi's CPU clock: waiting costs nothing). Given several files
after the first, their functions are added up (the processes of a cluster), and
the difference from the first is split in two:

- the functions called as often on both sides (within 3 %): the same work,
  and how much slower or faster it ran;
- the functions called more or less often: work one side does and the other
  does not (a second process receiving each event, more loop turns), listed by
  the CPU it adds.

Both sides must have carried the same load for the split to mean anything (an
open-loop phase: ``chat_open_1k``, ``chat_open_5k``). Standard library only.
"""

from __future__ import annotations

import json
import pstats
import sys
from collections import Counter
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[1]) + "/"
SAME_CALLS = 0.03  # call counts this close count as the same work
TOP = 30


def _name(key: tuple) -> str:
    path, line, func = key
    for marker in ("site-packages/", "/lib/python3."):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker.startswith("/lib"):
                path = path.split("/", 1)[-1]
            break
    else:
        path = path.removeprefix(ROOT)
    return f"{func} ({path}:{line})"


def load(paths: list[Path]) -> tuple[Counter, Counter]:
    """Own CPU seconds and calls per function, added up over ``paths``."""
    own: Counter = Counter()
    calls: Counter = Counter()
    for path in paths:
        for key, (_, ncalls, tottime, _, _) in pstats.Stats(str(path)).stats.items():
            name = _name(key)
            own[name] += tottime
            calls[name] += ncalls
    return own, calls


def threads(path: Path) -> list[dict]:
    listing = path.with_name(path.stem + ".threads.json")
    return json.loads(listing.read_text()) if listing.exists() else []


def summarize(path: Path) -> str:
    own, calls = load([path])
    total = sum(own.values())
    lines = [f"{path.name}: {total:.3f} s of CPU in Python functions"]
    for thread in threads(path):
        name, cpu = f"{thread['name']} #{thread['id']}", thread["cpuS"]
        lines.append(f"  thread {name}: {cpu:.3f} s")
    lines.append("Own CPU time by function (calls):")
    for name, seconds in own.most_common(TOP):
        share = seconds / total if total else 0
        lines.append(f"  {share:6.1%}  {seconds:7.3f} s  ({calls[name]})  {name}")
    return "\n".join(lines)


def compare(base: Path, others: list[Path]) -> str:
    one, one_calls = load([base])
    two, two_calls = load(others)
    total_one, total_two = sum(one.values()), sum(two.values())
    same_one = same_two = 0.0
    differing = []
    for name in set(one) | set(two):
        a, b = one_calls[name], two_calls[name]
        if a and abs(b - a) <= SAME_CALLS * a:
            same_one += one[name]
            same_two += two[name]
        else:
            differing.append(name)
    extra = sum(two[n] for n in differing) - sum(one[n] for n in differing)
    ratio = total_two / total_one if total_one else float("nan")
    label = " + ".join(p.name for p in others)
    lines = [
        f"{base.name}: {total_one:.3f} s; {label}: {total_two:.3f} s ({ratio:.2f}x)",
        f"- functions called as often on both sides: {same_one:.3f} s -> "
        f"{same_two:.3f} s ({same_two / same_one if same_one else float('nan'):.2f}x), "
        f"{same_two - same_one:+.3f} s",
        f"- functions called more or less often: {extra:+.3f} s",
        "Functions called more or less often, by the CPU they add (calls):",
    ]
    differing.sort(key=lambda n: two[n] - one[n], reverse=True)
    for name in differing[:TOP]:
        lines.append(
            f"  {two[name] - one[name]:+.4f} s  ({one_calls[name]} -> "
            f"{two_calls[name]})  {name}"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().split("\n\n")[0], file=sys.stderr)
        return 2
    paths = [Path(a) for a in argv]
    print(summarize(paths[0]) if len(paths) == 1 else compare(paths[0], paths[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
