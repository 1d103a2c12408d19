"""PostgreSQL and Redis for the PG+Redis configurations, from the standard library.

Redis is spoken to directly (a few RESP commands on a socket). PostgreSQL is
administered through the project's virtualenv, whose psycopg the servers use
anyway: ``CREATE DATABASE`` / ``DROP DATABASE`` on an admin connection. Both
must be on 127.0.0.1.
"""

from __future__ import annotations

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


def redis_call(url: str, *command: str) -> str:
    """Run one command on the URL's database; its simple or integer reply."""
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
        replies = []
        for _ in range(2):
            line = reader.readline().decode().rstrip("\r\n")
            if not line or line[0] not in "+:":
                raise HarnessError(f"Redis {command[0]}: {line or 'no reply'}")
            replies.append(line[1:])
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
    """

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
        redis_call(self.redis_url, "FLUSHDB")

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
            self.flush_redis()
        except (OSError, HarnessError):
            pass
