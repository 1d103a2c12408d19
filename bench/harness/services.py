"""PostgreSQL and Redis for the PG+Redis configurations, from the standard library.

Redis is spoken to directly (a few RESP commands on a socket). PostgreSQL is
administered through the project's virtualenv, whose psycopg the servers use
anyway: ``CREATE DATABASE`` / ``DROP DATABASE`` on an admin connection. Both
must be on 127.0.0.1.
"""

from __future__ import annotations

import os
import socket
import subprocess
import urllib.parse

from .config import VENV_BIN, HarnessError, log

_PG_SCRIPT = """
import sys
import psycopg
with psycopg.connect(sys.argv[1], autocommit=True, connect_timeout=5) as conn:
    for statement in sys.argv[2:]:
        conn.execute(statement)
"""
LOOPBACK = ("127.0.0.1", "localhost")


def _split(url: str, default_port: int) -> tuple[str, int, str]:
    parts = urllib.parse.urlsplit(url)
    if parts.hostname not in LOOPBACK:
        raise HarnessError(f"{url}: only 127.0.0.1 may be used")
    return parts.hostname, parts.port or default_port, parts.path.strip("/")


def redis_call(url: str, *command: str) -> str | None:
    """Run one command on the URL's database; its simple, integer or bulk reply."""
    host, port, db = _split(url, 6379)

    def encode(*args: str) -> bytes:
        out = [f"*{len(args)}\r\n".encode()]
        for arg in args:
            raw = arg.encode()
            out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
        return b"".join(out)

    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(encode("SELECT", db or "0") + encode(*command))
        reader = sock.makefile("rb")
        replies: list[str | None] = []
        for _ in range(2):
            line = reader.readline().decode().rstrip("\r\n")
            if line.startswith("$"):
                size = int(line[1:])
                replies.append(
                    None if size < 0 else reader.read(size + 2)[:-2].decode()
                )
            elif line and line[0] in "+:":
                replies.append(line[1:])
            else:
                raise HarnessError(f"Redis {command[0]}: {line or 'no reply'}")
    return replies[-1]


def pg_execute(admin_url: str, *statements: str) -> None:
    _split(admin_url, 5432)
    try:
        done = subprocess.run(
            [str(VENV_BIN / "python"), "-c", _PG_SCRIPT, admin_url, *statements],
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        raise HarnessError(f"PostgreSQL: {statements[0]!r} timed out") from None
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        raise HarnessError(f"PostgreSQL: {last}")


class Services:
    """This run's PostgreSQL databases and Redis database index.

    One template database (``…_tmpl``) is migrated and filled once; every server
    start gets ``CREATE DATABASE … TEMPLATE`` of it and an emptied Redis
    database. ``cleanup()`` drops every database the run made.

    The Redis database holds a claim (``bamchat-bench:owner``, this process's
    id): a second run of the bench on the same database stops instead of
    flushing the first one's state, and a flush by anyone else while a server
    runs is noticed (the claim is gone) so its figures can be discarded.
    """

    CLAIM = "bamchat-bench:owner"

    def __init__(self, pg_url: str, redis_url: str, run_id: str) -> None:
        self.pg_url = pg_url
        self.redis_url = redis_url
        self.prefix = f"bamchat_bench_{run_id}"
        self.template = f"{self.prefix}_tmpl"
        self.made: list[str] = []

    def loopback(self) -> bool:
        try:
            _split(self.pg_url, 5432)
            _split(self.redis_url, 6379)
        except HarnessError:
            return False
        return True

    def unreachable(self) -> str | None:
        """Why PostgreSQL or Redis cannot be used, or None."""
        try:
            if redis_call(self.redis_url, "PING") != "PONG":
                return f"Redis at {self.redis_url} does not answer PING"
        except (OSError, HarnessError) as exc:
            return f"Redis at {self.redis_url} unreachable ({exc})"
        try:
            pg_execute(self.pg_url, "SELECT 1")
        except HarnessError as exc:
            return f"PostgreSQL at {self.pg_url} unreachable ({exc})"
        return None

    def url(self, name: str) -> str:
        return urllib.parse.urlunsplit(
            urllib.parse.urlsplit(self.pg_url)._replace(path="/" + name)
        )

    def create_template(self) -> str:
        pg_execute(self.pg_url, f'CREATE DATABASE "{self.template}"')
        self.made.append(self.template)
        return self.url(self.template)

    def fresh_database(self, tag: str) -> str:
        """A copy of the template (nothing may be connected to the template)."""
        name = f"{self.prefix}_{len(self.made)}_{tag}"[:63]
        pg_execute(self.pg_url, f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        self.made.append(name)
        return self.url(name)

    def flush_redis(self) -> None:
        owner = redis_call(self.redis_url, "GET", self.CLAIM)
        mine = f"{os.getpid()}:{self.prefix}"
        if owner and owner != mine and _alive(owner.split(":", 1)[0]):
            raise HarnessError(
                f"Redis database {self.redis_url} is in use by another bench run "
                f"(process {owner.split(':', 1)[0]}); pass --redis-url with another "
                "database index"
            )
        redis_call(self.redis_url, "FLUSHDB")
        redis_call(self.redis_url, "SET", self.CLAIM, mine)

    def redis_intact(self) -> str | None:
        """None while this run's claim is still in Redis; else what happened."""
        try:
            owner = redis_call(self.redis_url, "GET", self.CLAIM)
        except (OSError, HarnessError) as exc:
            return f"Redis unreachable after the phases ({exc})"
        if owner != f"{os.getpid()}:{self.prefix}":
            return (
                f"Redis database {self.redis_url} was flushed or taken by someone "
                "else while the server ran; its figures are discarded"
            )
        return None

    def cleanup(self) -> None:
        if not self.made:
            return
        drops = [f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in self.made]
        try:
            pg_execute(self.pg_url, *reversed(drops))
            self.made.clear()
        except HarnessError as exc:
            log(f"could not drop the bench databases {self.made}: {exc}")
        try:
            if self.redis_intact() is None:
                redis_call(self.redis_url, "FLUSHDB")
        except (OSError, HarnessError):
            pass


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True
