"""BAM Chat's accounts and BAMs (over REST, once per run); the relays' layout."""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .config import LIFTED, PASSWORD, ROOT, VENV_BIN, HarnessError, log, servers
from .processes import Running


def http_json(base: str, method: str, path: str, body=None, token=None):
    """One REST call; a throttled one (429) is retried after the wait it asks for."""
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    for _attempt in range(30):
        req = urllib.request.Request(
            base + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            if exc.code != 429:
                raise HarnessError(
                    f"{method} {path} -> {exc.code}: {exc.read()[:300]!r}"
                ) from None
            wait = float(exc.headers.get("Retry-After") or 1)
            log(f"{method} {path} throttled; retrying in {wait:.0f}s")
            time.sleep(min(max(wait, 0.5), 10))
    raise HarnessError(f"{method} {path}: still throttled after 30 attempts")


@dataclass
class Layout:
    """Who is where: users in groups of ``room``; each group has a work BAM."""

    users: list[dict]  # {id, token}
    groups: list[list[int]]  # user indexes per group
    work_bams: list[str]  # one per group
    crowd_bams: list[str]  # for idle/storm: N / room BAMs, group b % groups


def bamchat_env(
    secret: str, sqlite_path: str = "", database_url: str = "", redis_url: str = ""
) -> dict[str, str]:
    """The servers' environment: SQLite + in-memory layer (``sqlite_path``), or
    PostgreSQL (``database_url``), with Redis when ``redis_url`` is given."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in ("DATABASE_URL", "REDIS_URL", "SQLITE_PATH", "DJANGO_SETTINGS_MODULE")
    }
    if sqlite_path:
        env["SQLITE_PATH"] = sqlite_path
    if database_url:
        env["DATABASE_URL"] = database_url
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update(
        DJANGO_SECRET_KEY=secret,
        DJANGO_DEBUG="0",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        JWT_ACCESS_MINUTES="720",
        RATE_SEND_BURST=LIFTED,
        RATE_SEND_PER_S=LIFTED,
        RATE_TYPING_BURST=LIFTED,
        RATE_TYPING_PER_S=LIFTED,
        RATE_JOIN_BURST=LIFTED,
        RATE_JOIN_PER_S=LIFTED,
        REST_WRITE_RATE=f"{LIFTED}/s",
        REGISTER_RATE=f"{LIFTED}/s",
        PYTHONUNBUFFERED="1",
    )
    return env


def prepare_bamchat(
    env: dict[str, str], name: str, prof: dict, logs: Path, crowds: bool = True
) -> Layout:
    """Fill a template database (``env`` points the app at it): migrate, then
    accounts and BAMs over REST through a setup server."""
    t0 = time.monotonic()
    subprocess.run(
        [str(VENV_BIN / "python"), "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    log(f"{name}: migrated the template database in {time.monotonic() - t0:.1f}s")
    setup = Running(servers()["daphne"], env, logs / f"setup-{name}.log")
    try:
        setup.wait_ready()
        log(f"{name}: setup server up; registering accounts")
        n_users = prof["groups"] * prof["room"]
        run_id = secrets.token_hex(3)

        def account(i: int) -> dict:
            name = f"bench{run_id}_{i}"
            user = http_json(
                setup.url,
                "POST",
                "/auth/register",
                {"username": name, "password": PASSWORD},
            )
            pair = http_json(
                setup.url,
                "POST",
                "/auth/token",
                {"username": name, "password": PASSWORD},
            )
            return {"id": str(user["id"]), "token": pair["access"]}

        with ThreadPoolExecutor(max_workers=4) as pool:
            users = list(pool.map(account, range(n_users)))
        groups = [
            list(range(g * prof["room"], (g + 1) * prof["room"]))
            for g in range(prof["groups"])
        ]

        def bam(args: tuple[str, int]) -> str:
            title, g = args
            owner, *others = groups[g]
            made = http_json(
                setup.url,
                "POST",
                "/bams",
                {"title": title, "participantIds": [users[o]["id"] for o in others]},
                token=users[owner]["token"],
            )
            return str(made["id"])

        crowd = max(prof["idle_n"], prof["storm_n"]) // prof["room"] if crowds else 0
        with ThreadPoolExecutor(max_workers=4) as pool:
            work = list(pool.map(bam, [(f"work {g}", g) for g in range(len(groups))]))
            crowd_bams = list(
                pool.map(bam, [(f"crowd {b}", b % len(groups)) for b in range(crowd)])
            )
    finally:
        setup.stop()
    log(
        f"{name} template: {n_users} accounts, {len(work) + len(crowd_bams)} BAMs "
        f"in {time.monotonic() - t0:.1f}s"
    )
    return Layout(users, groups, work, crowd_bams)


def relay_layout(prof: dict) -> Layout:
    """The same layout for the relays: a token is just the user id."""
    n_users = prof["groups"] * prof["room"]
    users = [{"id": str(i + 1), "token": str(i + 1)} for i in range(n_users)]
    groups = [
        list(range(g * prof["room"], (g + 1) * prof["room"]))
        for g in range(prof["groups"])
    ]
    crowd = max(prof["idle_n"], prof["storm_n"]) // prof["room"]
    return Layout(
        users,
        groups,
        [str(g + 1) for g in range(len(groups))],
        [str(1000 + b) for b in range(crowd)],
    )


def copy_database(src: Path, dst: Path) -> None:
    """A consistent copy (WAL included) of an SQLite database."""
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    a.close()
    b.close()
