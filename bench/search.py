#!/usr/bin/env python3
"""Message search on PostgreSQL at scale (issue 22): latency and insert cost.

    python3 bench/search.py            # 1,000,000 messages (about 3 minutes)
    python3 bench/search.py --quick    # 20,000 messages, about 15 s: what CI runs

1. Makes its own database (``bamchat_bench_search_<run>``) on the PostgreSQL of
   ``--pg-url``, migrates it, and fills it (``bench/search_worker.py fill``):
   users, BAMs and memberships, then the messages in one set-based insert
   under the application's own trigger, so every ``search_vector`` is what the
   write path stores.
2. Times ``messaging.search.message_search`` (the selector of ``GET
   /search/messages``) for 1-, 2- and 3-word queries and phrases, common and
   rare words, for a caller in many BAMs and one in a few.
3. Copies the database and migrates the copy back to before the search index
   (``messaging 0009``: no vector column, trigger or GIN index), then times the
   write path (``message_create``, one message per transaction, and
   ``messages_create``, the socket path's group commit) on both, in
   alternating rounds.

Prints a markdown table and writes it to ``bench/results/search.md``, with
the raw figures in ``search.json``; the databases are dropped at the end.
Exit status: 0 when everything was measured, 1 when something could not be, 2
on bad usage or a missing environment. Standard library only; the
server-side work runs with the project's ``.venv``. 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

from harness.config import PG_URL, RESULTS, ROOT, VENV_BIN, HarnessError, log
from harness.layout import bamchat_env
from harness.services import _PG_SCRIPT, pg_execute
from harness.system import machine
from search_report import insert_figures, report

WORKER = ROOT / "bench" / "search_worker.py"
PROFILES = {
    "full": {
        "messages": 1_000_000,
        "users": 5_000,
        "bams": 10_000,
        "heavyEvery": 20,  # the heavy caller is in every 20th BAM: 500
        "lightBams": 10,
        "vocabulary": 5_000,
        "queries": 20,  # distinct queries per row
        "repeats": 5,  # each measured this many times
        "rounds": 4,  # insert rounds on each database (AB BA AB BA)
        "warmup": 50,
        "singles": 1_000,
        "batches": 50,
        "batchSize": 20,
        "bulk": 20_000,  # rows of the database-only insert (rolled back)
    },
    "quick": {
        "messages": 20_000,
        "users": 500,
        "bams": 1_000,
        "heavyEvery": 20,
        "lightBams": 10,
        "vocabulary": 5_000,
        "queries": 3,
        "repeats": 2,
        "rounds": 1,
        "warmup": 10,
        "singles": 50,
        "batches": 5,
        "batchSize": 20,
        "bulk": 2_000,
    },
}


def worker(env: dict, mode: str, args: dict, timeout: float) -> dict:
    """Run one worker mode; its RESULT."""
    try:
        done = subprocess.run(
            [str(VENV_BIN / "python"), str(WORKER), mode, json.dumps(args)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise HarnessError(f"worker {mode} timed out after {timeout:.0f}s") from None
    lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    if done.returncode or not lines:
        raise HarnessError(f"worker {mode} failed (exit {done.returncode})")
    return json.loads(lines[-1][len("RESULT ") :])


def migrate(env: dict, *target: str) -> None:
    subprocess.run(
        [
            *(str(VENV_BIN / "python"), "manage.py", "migrate"),
            *("--no-input", "-v", "0", *target),
        ],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=600,
    )


def pg_long(url: str, *statements: str) -> None:
    """Statements that may take minutes (``pg_execute`` allows two)."""
    argv = [str(VENV_BIN / "python"), "-c", _PG_SCRIPT, url, *statements]
    subprocess.run(argv, check=True, timeout=1800)


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Message search latency and insert cost on PostgreSQL (issue 22)."
    )
    parser.add_argument("--quick", action="store_true", help="20,000 messages")
    parser.add_argument(
        "--messages", type=int, help="messages to store (default: the profile's)"
    )
    parser.add_argument(
        "--pg-url",
        default=PG_URL,
        help="PostgreSQL admin connection on 127.0.0.1; the run makes and drops "
        "its own databases (default: %(default)s)",
    )
    args = parser.parse_args()
    prof_name = "quick" if args.quick else "full"
    prof = dict(PROFILES[prof_name])
    if args.messages is not None:
        if not 1_000 <= args.messages <= 10_000_000:
            parser.error("--messages: between 1,000 and 10,000,000")
        prof["messages"] = args.messages
    if not (VENV_BIN / "python").exists():
        log(f"no project virtualenv at {VENV_BIN.parent}; see the README's setup")
        return 2
    try:
        pg_execute(args.pg_url, "SELECT 1")
    except HarnessError as exc:
        log(f"PostgreSQL unreachable or not on 127.0.0.1: {exc}")
        return 2
    started = time.monotonic()
    info = machine()
    info["postgres"] = (
        subprocess.run(
            [str(VENV_BIN / "python"), "-c", _PG_VERSION, args.pg_url],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
        or "?"
    )
    prefix = f"bamchat_bench_search_{secrets.token_hex(3)}"
    made: list[str] = []
    secret = secrets.token_urlsafe(50)

    def url(name: str) -> str:
        return args.pg_url.rsplit("/", 1)[0] + "/" + name

    def env_for(name: str) -> dict:
        env = bamchat_env(secret, database_url=url(name))
        env["TASKS_IN_PROCESS_WORKER"] = "0"
        return env

    indexed, plain = prefix, f"{prefix}_noindex"
    slow = 6 * 3600
    try:
        pg_execute(args.pg_url, f'CREATE DATABASE "{indexed}"')
        made.append(indexed)
        migrate(env_for(indexed))
        log(f"filling {indexed} with {prof['messages']:,} messages")
        fill = worker(env_for(indexed), "fill", prof, slow)
        log(f"filled in {fill['seconds']['total']:.0f}s; searching")
        found = worker(env_for(indexed), "search", prof, slow)
        log("copying the database without the search index")
        copy = f'CREATE DATABASE "{plain}" TEMPLATE "{indexed}"'
        major = info["postgres"].split(".")[0]
        if major.isdigit() and int(major) >= 15:
            copy += " STRATEGY FILE_COPY"  # not through the WAL
        pg_long(args.pg_url, copy)
        made.append(plain)
        migrate(env_for(plain), "messaging", "0009")
        # Dropping the column leaves its data in the rows: rewrite the table so
        # that the copy is as large as a database that never had the index.
        # The copy and the rewrite leave much to write back: a checkpoint now,
        # so that the first insert round does not pay for it.
        vacuum = "VACUUM (FULL, ANALYZE) messaging_message"
        pg_long(url(plain), vacuum, "CHECKPOINT")
        runs: dict[str, list[dict]] = {"indexed": [], "plain": []}
        for r in range(prof["rounds"]):
            order = ("indexed", "plain") if r % 2 == 0 else ("plain", "indexed")
            for key in order:
                name = indexed if key == "indexed" else plain
                last = r >= prof["rounds"] - 2
                res = worker(
                    env_for(name),
                    "insert",
                    {**prof, "round": r, "bulkRound": last},
                    slow,
                )
                if res["indexed"] != (key == "indexed"):
                    raise HarnessError(f"{name}: the search index is not as expected")
                runs[key].append(res)
                log(f"insert round {r + 1} on {key}: done")
        writes = {
            "indexed": insert_figures(runs["indexed"]),
            "plain": insert_figures(runs["plain"]),
            "sizesIndexed": runs["indexed"][-1]["sizes"],
            "sizesPlain": runs["plain"][-1]["sizes"],
            "batchSize": prof["batchSize"],
            "bulk": prof["bulk"],
        }
    except (HarnessError, subprocess.SubprocessError, OSError) as exc:
        log(f"could not measure: {exc}")
        return 1
    finally:
        if made:
            try:
                pg_execute(
                    args.pg_url,
                    *[f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in made],
                )
            except HarnessError as exc:
                log(f"could not drop {made}: {exc}")
    info["loadavgEnd"] = Path("/proc/loadavg").read_text().split()[:3]
    markdown = report(info, prof_name, fill, found, writes)
    elapsed = time.monotonic() - started
    markdown += f"\n\nTotal time: {elapsed:.0f} s.\n"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "search.md").write_text(markdown)
    (RESULTS / "search.json").write_text(
        json.dumps(
            {
                "machine": info,
                "profile": prof,
                "fill": fill,
                "search": found,
                "insert": {**writes, "rounds": runs},
            },
            indent=1,
        )
    )
    print(markdown)
    log(f"written {RESULTS / 'search.md'} ({elapsed:.0f} s)")
    return 0


_PG_VERSION = """
import sys, psycopg
with psycopg.connect(sys.argv[1], connect_timeout=5) as conn:
    print(conn.execute("SHOW server_version").fetchone()[0].split()[0])
"""

if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
