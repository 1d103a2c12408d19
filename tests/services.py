"""Servers a test owns or needs: the machine's PostgreSQL and Redis, throwaway
databases, a private Redis, a private PostgreSQL cluster, a failover proxy."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from urllib.parse import urlparse, urlunparse

import redis.asyncio as aredis


def service_reachable(host: str, port: int) -> bool:
    """Whether a TCP server answers on host:port."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


class ThrowawayPostgres:
    """A fresh PostgreSQL database on the server of ``base_url``, dropped at the end."""

    def __init__(self, base_url: str) -> None:
        self.base = urlparse(base_url)
        self.name = f"bamchat_live_{uuid.uuid4().hex[:10]}"
        self.url = urlunparse(self.base._replace(path="/" + self.name))

    def _admin(self):
        import psycopg

        admin = urlunparse(self.base._replace(path="/postgres"))
        return psycopg.connect(admin, autocommit=True)

    def create(self, *, template: str = "") -> str:
        """Create the database (a copy of ``template``, when named)."""
        copy = f' TEMPLATE "{template}"' if template else ""
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"{copy}')
        return self.url

    def drop(self) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    """A redis-server of the test's own on a free loopback port, restartable."""

    def __init__(self, password: str | None = None) -> None:
        self.port = free_port()
        self.password = password
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server"),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                *(["--requirepass", self.password] if self.password else []),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for line in self.process.stdout:
            if "Ready to accept connections" in line:
                return
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


class _Link:
    """One client connection through the proxy."""

    frozen = False


class FailoverProxy:
    """What a load balancer does for these tests: one address on loopback that
    forwards each new TCP connection to the first backend that accepts it.
    ``freeze()`` makes the connections open at that moment carry nothing more,
    either way, without closing them: a peer gone without a reset (a host that
    vanished, a partition), as against a server that stops or stalls."""

    def __init__(self, backends: list[int]) -> None:
        self.backends = backends
        self.server: asyncio.base_events.Server | None = None
        self.port: int | None = None
        self._pipes: set[asyncio.Task] = set()
        self._links: list[_Link] = []

    def freeze(self) -> None:
        for link in self._links:
            link.frozen = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FailoverProxy:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader, writer) -> None:
        for port in list(self.backends):
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                continue
        else:
            writer.close()
            return
        link = _Link()
        link.streams = (reader, writer, up_reader, up_writer)  # none closed by GC
        self._links.append(link)
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst, link))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    @staticmethod
    async def _pipe(src, dst, link: _Link) -> None:
        try:
            while data := await src.read(65536):
                if link.frozen:
                    continue  # swallowed: nothing arrives, nothing is refused
                dst.write(data)
                await dst.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            if not link.frozen:  # frozen, the other side learns nothing, ever
                dst.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for link in self._links:
            link.frozen = False  # the pipes now close both sides as they end
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)


class OwnPostgres:
    """A PostgreSQL cluster of the test's own (``initdb`` into a temporary
    folder, a free loopback port) that it may crash and restart. The server runs
    as the ``postgres`` user when the tests run as root, as PostgreSQL requires."""

    def __init__(self) -> None:
        self.port = free_port()
        self.tmp = tempfile.mkdtemp(prefix="bamchat-pg-")
        self.data = os.path.join(self.tmp, "data")
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            import pwd

            owner = pwd.getpwnam("postgres")
            os.chown(self.tmp, owner.pw_uid, owner.pw_gid)
            self.as_user = [shutil.which("runuser"), "-u", "postgres", "--"]

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run(
            [*self.as_user, *args], check=True, capture_output=True, timeout=60
        )

    def init(self) -> OwnPostgres:
        self._run(
            shutil.which("initdb"), "-D", self.data, "-A", "trust", "-U", "postgres",
            "--no-sync",
        )  # fmt: skip
        return self.start()

    def start(self) -> OwnPostgres:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.tmp} "
            "-c fsync=off -c max_connections=200"
        )
        self._run(
            shutil.which("pg_ctl"), "-D", self.data, "-o", options, "-w", "-t", "30",
            "-l", os.path.join(self.tmp, "log"), "start",
        )  # fmt: skip
        return self

    def crash(self) -> None:
        """Stop at once, as a crash does: no checkpoint, clients cut off."""
        self._run(shutil.which("pg_ctl"), "-D", self.data, "-m", "immediate", "stop")

    def close(self) -> None:
        try:
            self._run(shutil.which("pg_ctl"), "-D", self.data, "-m", "fast", "stop")
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.tmp, ignore_errors=True)


# -- waiting for Redis ------------------------------------------------------------
TIMEOUT_S = 5


async def until(predicate, what: str, timeout: float = TIMEOUT_S) -> None:
    """Wait until the coroutine function ``predicate`` returns true."""

    async def poll():
        while not await predicate():
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"{what} did not happen within {timeout}s") from None


async def until_subscribed(url: str, counts: dict[bytes, int]) -> None:
    """Until Redis counts these subscribers on these pub/sub channels."""
    async with aredis.Redis.from_url(url) as client:

        async def subscribed():
            pairs = await client.pubsub_numsub(*counts)
            return all(dict(pairs).get(name, 0) >= n for name, n in counts.items())

        await until(subscribed, f"subscriptions {counts}")
