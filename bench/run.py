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
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.config import (
    PHASES,
    PROFILES,
    RESULTS,
    VENV_BIN,
    HarnessError,
    log,
    servers,
)
from harness.layout import bamchat_env, copy_database, prepare_bamchat, relay_layout
from harness.phases import measure
from harness.report import table
from harness.system import ensure_npm, machine, raise_fd_limit


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
