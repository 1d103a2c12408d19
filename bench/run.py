#!/usr/bin/env python3
"""BAM Chat benchmark (issues 6 and 15): BAM Chat against Node Socket.IO.

    python3 bench/run.py            # full run (about 15 minutes)
    python3 bench/run.py --quick    # a minute or two (what CI runs)

Servers, measured one after another in the same run with the same load
generator (``bench/loadgen.mjs``, official ``socket.io-client@4`` under Node):

1. ``daphne``: BAM Chat as the README runs it in production
   (``daphne -e tcp:port=PORT:interface=127.0.0.1:backlog=4096
   bamchat.asgi:application``), embedded default: SQLite + in-memory layer
2. ``daphne-pg``: the same on PostgreSQL + Redis
3. ``cluster``: two such processes on one PostgreSQL database and Redis,
   clients alternating between them
4. ``py-relay``: a bare python-socketio relay (``bench/servers/py_relay.py``)
5. ``node``: a Node ``socket.io@4`` relay (``bench/servers/node_relay.mjs``)

and, when named with ``--servers``, variants: among them ``py-relay-redis`` and
``py-relay-cluster``, the bare relay through python-socketio's own Redis
manager as one process and as two (what the library pays for a second process).

BAM Chat's accounts and BAMs are made once per run and per database kind
through the REST API (a template database); every server start gets a fresh
copy of it, and rate limits are lifted so the figures measure the server
rather than the limiter. Workloads, figures and layout are described in
``bench/README.md``; the harness itself is in ``bench/harness/``.

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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness.config import (
    DEFAULT_SERVERS,
    PG_URL,
    PHASES,
    PROFILES,
    REDIS_URL,
    RESULTS,
    TIMES,
    VENV_BIN,
    HarnessError,
    log,
    servers,
)
from harness.corun import penalty as corun_penalty
from harness.layout import bamchat_env, copy_database, prepare_bamchat, relay_layout
from harness.phases import measure, phases_for
from harness.processes import Profiling
from harness.report import table
from harness.rounds import cpu_ratios, median_round
from harness.services import Services
from harness.system import ensure_npm, machine, raise_fd_limit

SQLITE_TEMPLATE = "template.sqlite3"  # in the run's temporary folder


def main() -> int:
    parser = argparse.ArgumentParser(
        description="BAM Chat vs Node Socket.IO, side by side (issues 6 and 15)."
    )
    parser.add_argument("--quick", action="store_true", help="seconds per phase")
    parser.add_argument(
        "--profile",
        nargs="?",
        const="stacks",
        choices=("stacks", "cpu"),
        help="profile the Python servers during the idle, storm, closed-loop and "
        "open-loop phases, into bench/results/profiles/ (figures of a profiled run "
        "are perturbed): 'stacks' (the default) samples them with py-spy, 'cpu' "
        "counts each function's CPU time and calls with yappi inside them and "
        "compares the cluster with one process (pip install py-spy or yappi into "
        ".venv)",
    )
    known = servers()
    parser.add_argument(
        "--servers",
        default=",".join(DEFAULT_SERVERS),
        help=f"comma-separated, in the order to run (default: %(default)s); "
        f"also: {', '.join(k for k in known if k not in DEFAULT_SERVERS)}",
    )
    parser.add_argument(
        "--phases",
        help=f"comma-separated subset of: {', '.join(PHASES)} (default: each "
        "server's own set; a server skips the phases it cannot run)",
    )
    parser.add_argument(
        "--closed-s",
        type=float,
        help="seconds of each closed-loop chat phase (default: 10, or 1 with "
        "--quick); longer runs spread less on a shared machine",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure every server's phases this many times, the servers taking "
        "turns; the table shows each figure's median round, and issue 19's CPU "
        "ratios are given round by round with their median (default: 1)",
    )
    parser.add_argument(
        "--pg-url",
        default=PG_URL,
        help="PostgreSQL admin connection on 127.0.0.1; the run makes and drops "
        "its own databases (default: %(default)s)",
    )
    parser.add_argument(
        "--redis-url",
        default=REDIS_URL,
        help="a Redis database the run owns: it is flushed before every server "
        "start (default: %(default)s)",
    )
    args = parser.parse_args()
    only = None
    if args.phases:
        only = {p.strip() for p in args.phases.split(",") if p.strip()}
        if not only or not only <= set(PHASES):
            parser.error(f"--phases: choose among {', '.join(PHASES)}")
    order = [s.strip() for s in args.servers.split(",") if s.strip()]
    if not order or any(s not in known for s in order) or len(set(order)) < len(order):
        parser.error(f"--servers: choose among {', '.join(known)}")
    prof = PROFILES["quick" if args.quick else "full"]
    if args.closed_s is not None:
        if args.closed_s <= 0:
            parser.error("--closed-s: a number of seconds above 0")
        prof = {**prof, "closed_s": args.closed_s}
    if args.rounds < 1:
        parser.error("--rounds: a whole number above 0")
    started = time.monotonic()
    if not (VENV_BIN / "python").exists():
        log(f"no project virtualenv at {VENV_BIN.parent}; see the README's setup")
        return 2
    if shutil.which("node") is None or shutil.which("npm") is None:
        log("node and npm are required")
        return 2
    services = Services(args.pg_url, args.redis_url, secrets.token_hex(3))
    if not services.loopback():
        parser.error("--pg-url and --redis-url must be on 127.0.0.1")
    skipped: list[str] = []
    needs_services = [k for k in order if known[k].backend in ("pg", "redis")]
    if needs_services:
        reason = services.unreachable()
        if reason and os.environ.get("CI") == "true":
            log(f"{', '.join(needs_services)}: {reason} (CI=true: this is an error)")
            return 2
        if reason:
            skipped.append(f"Skipped {', '.join(needs_services)}: {reason}.")
            log(skipped[-1])
            order = [k for k in order if k not in needs_services]
    plans = {k: phases_for(known[k], only) for k in order}
    fds = raise_fd_limit()
    if fds < max(prof["idle_n"], prof["storm_n"]) * 2 + 100:
        log(f"warning: open-file limit {fds} may be too low for this run")
    ensure_npm()
    info = machine()
    RESULTS.mkdir(exist_ok=True)
    logs = RESULTS / "logs"
    logs.mkdir(exist_ok=True)
    for old in logs.glob("*.log"):  # this run's logs only
        old.unlink()
    tmp = Path(tempfile.mkdtemp(prefix="bamchat-bench-"))
    profiles = None
    if args.profile:
        profiles = Profiling(RESULTS / "profiles", args.profile)
        if problem := profiles.missing():
            log(problem)
            return 2
        profiles.folder.mkdir(exist_ok=True)
        for old in profiles.folder.iterdir():  # this run's profiles only
            old.unlink()
    rounds: list[dict] = []
    corun: list[float | None] = []  # the machine's charge for two busy CPUs, by round
    broken = False
    secret = secrets.token_urlsafe(50)
    sqlite_template = tmp / SQLITE_TEMPLATE
    try:
        layouts = prepare_templates(
            order, plans, services, sqlite_template, secret, prof, logs
        )
        for n in range(args.rounds):
            if args.rounds > 1:
                log(f"round {n + 1} of {args.rounds}")
            if any(known[k].processes > 1 for k in order):
                corun.append(corun_penalty(str(VENV_BIN / "python")))
                log(
                    "the same Python work on two busy CPUs: "
                    f"{corun[-1] or 0:.2f}{TIMES} its CPU alone"
                )
            rounds.append(
                measure_all(
                    order, plans, layouts, services, secret, tmp, prof, logs, profiles
                )
            )
            if profiles:
                profiles.compare()
                profiles = None  # the first round's profiles are kept
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        services.cleanup()
    all_results = median_round(rounds) if rounds else {}
    for res in all_results.values():
        if "error" in res or any(
            isinstance(v, dict) and "error" in v for v in res.values()
        ):
            broken = True
    markdown = table(all_results, order, prof, info)
    ratios = cpu_ratios(rounds, quick=args.quick, corun=corun)
    if ratios:
        markdown += "\n\n" + "\n".join(ratios)
    elapsed = time.monotonic() - started
    if skipped:
        markdown += "\n\n" + "\n".join(skipped)
    markdown += f"\n\nTotal benchmark time: {elapsed:.0f} s.\n"
    (RESULTS / "latest.md").write_text(markdown)
    (RESULTS / "latest.json").write_text(
        json.dumps(
            {
                "machine": info,
                "profile": prof,
                "phases": plans,
                "skipped": skipped,
                "results": all_results,
                "rounds": rounds,
                "corun": corun,
            },
            indent=1,
        )
    )
    print(markdown)
    log(f"written {RESULTS / 'latest.md'} ({elapsed:.0f} s)")
    if broken:
        log("some figures could not be measured (see 'error' above)")
    return 1 if broken else 0


def measure_all(
    order: list[str],
    plans: dict[str, list[str]],
    layouts: dict[str, object],
    services: Services,
    secret: str,
    tmp: Path,
    prof: dict,
    logs: Path,
    profiles: Profiling | None = None,
) -> dict:
    """One round: every server's phases, in order; server key -> results.
    SQLite servers start from the template ``prepare_templates`` made in
    ``tmp``."""
    sqlite_template = tmp / SQLITE_TEMPLATE
    known = servers()
    all_results: dict = {}
    for key in order:
        server = known[key]
        log(f"measuring {server.label}: {', '.join(plans[key])}")
        if server.kind == "bamchat":
            layout = layouts.get(server.backend)
            if isinstance(layout, str):
                all_results[key] = {"error": f"BAM Chat setup failed: {layout}"}
                continue
            if server.backend == "pg":

                def make_env(group: str, key=key) -> dict[str, str]:
                    services.flush_redis()
                    url = services.fresh_database(f"{key}_{group}")
                    return bamchat_env(
                        secret, database_url=url, redis_url=services.redis_url
                    )
            else:

                def make_env(group: str, key=key) -> dict[str, str]:
                    db = tmp / f"{key}-{group}.sqlite3"
                    copy_database(sqlite_template, db)
                    return bamchat_env(secret, sqlite_path=str(db))
        else:
            layout = relay_layout(prof)

            def make_env(group: str, server=server) -> dict[str, str]:
                env = {**os.environ, "PYTHONUNBUFFERED": "1"}
                if server.backend == "redis":
                    services.flush_redis()
                    env["PY_RELAY_REDIS_URL"] = services.redis_url
                return env

        check = services.redis_intact if server.backend in ("pg", "redis") else None
        all_results[key] = measure(
            server, make_env, layout, prof, tmp, logs, profiles, plans[key], check
        )
    return all_results


def prepare_templates(
    order: list[str],
    plans: dict[str, list[str]],
    services: Services,
    sqlite_template: Path,
    secret: str,
    prof: dict,
    logs: Path,
) -> dict[str, object]:
    """The template database of each kind the run needs, made side by side
    (password hashing keeps a setup server's core busy): backend -> Layout,
    or the reason it failed."""
    known = servers()
    needed: dict[str, bool] = {}  # backend -> whether crowds are needed
    for key in order:
        server = known[key]
        if server.kind == "bamchat":
            crowds = bool({"idle", "storm"} & set(plans[key]))
            needed[server.backend] = needed.get(server.backend, False) or crowds

    def make(backend: str):
        try:
            if backend == "pg":
                services.flush_redis()
                env = bamchat_env(secret, database_url=services.create_template())
            else:
                env = bamchat_env(secret, sqlite_path=str(sqlite_template))
            return prepare_bamchat(env, backend, prof, logs, needed[backend])
        except (HarnessError, OSError, subprocess.CalledProcessError) as exc:
            log(f"could not prepare BAM Chat on {backend}: {exc}")
            return str(exc)

    if not needed:
        return {}
    with ThreadPoolExecutor(max_workers=len(needed)) as pool:
        return dict(zip(needed, pool.map(make, needed), strict=True))


if __name__ == "__main__":
    sys.exit(main())
