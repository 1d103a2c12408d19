"""CPU profiling of a benchmarked server process (``bench/run.py --profile cpu``).

The bench puts this folder first on the server's ``PYTHONPATH`` and names an
output folder in ``BENCH_CPU_PROFILE_DIR``; nothing else ever imports it. It
waits for signals from the harness:

- ``SIGUSR1``: start yappi on every thread, counting each function's CPU time
  (the thread's own clock, so a thread waiting for a lock, a socket or the
  database counts nothing);
- ``SIGUSR2``: stop, write the function statistics (``<pid>.pstat``, the
  standard library's ``pstats`` format) and each thread's CPU seconds
  (``<pid>.threads.json``), then forget them for the next window.

The files appear under their final names only once written whole.
"""

import json
import os
import signal
from pathlib import Path

OUT = os.environ.get("BENCH_CPU_PROFILE_DIR")


def _start(signum, frame) -> None:
    import yappi

    yappi.clear_stats()
    yappi.set_clock_type("cpu")
    yappi.start(builtins=False, profile_threads=True)


def _stop(signum, frame) -> None:
    import yappi

    yappi.stop()
    out = Path(OUT)
    pid = os.getpid()
    stats = out / f"{pid}.pstat"
    partial = stats.with_suffix(".pstat.partial")
    yappi.get_func_stats().save(str(partial), type="pstat")
    threads = [
        {"name": t.name, "id": t.id, "cpuS": t.ttot, "switches": t.sched_count}
        for t in yappi.get_thread_stats()
    ]
    listing = out / f"{pid}.threads.json"
    listing.with_suffix(".partial").write_text(json.dumps(threads))
    listing.with_suffix(".partial").rename(listing)
    partial.rename(stats)  # last: the harness waits for this one
    yappi.clear_stats()


if OUT:
    signal.signal(signal.SIGUSR1, _start)
    signal.signal(signal.SIGUSR2, _stop)
