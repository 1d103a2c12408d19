"""Live servers and real clients for end-to-end tests.

``LiveServer`` runs ``daphne bamchat.asgi:application`` in a subprocess on a
loopback port chosen by the OS and waits for it to say it is listening.
``Api`` is a REST client (aiohttp); ``Peer`` is a python-socketio ``AsyncClient``
that records every event it receives so a test can wait for one.
"""

from __future__ import annotations

import asyncio
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import aiohttp
import socketio

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery-42"
EVENT_TIMEOUT_S = 10
LISTENING = re.compile(r"Listening on TCP address [\d.]+:(\d+)")


def ci() -> bool:
    """Whether this run is CI, where nothing may be skipped."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


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

    def create(self) -> str:
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        return self.url

    def drop(self) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class LiveServer:
    """One daphne process serving the project on 127.0.0.1."""

    def __init__(
        self, env: dict[str, str], name: str = "server", daphne_args: tuple = ()
    ) -> None:
        self.env = env
        self.name = name
        self.daphne_args = tuple(daphne_args)
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        self.log_lines: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, port: int = 0, timeout: float = 30) -> LiveServer:
        daphne = Path(sys.executable).with_name("daphne")
        self.process = subprocess.Popen(
            [
                str(daphne),
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                *self.daphne_args,
                "bamchat.asgi:application",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()
        try:
            while True:
                line = self._lines.get(timeout=timeout)
                if line is None:
                    raise RuntimeError(
                        f"{self.name} exited before listening:\n{self.log()}"
                    )
                match = LISTENING.search(line)
                if match:
                    self.port = int(match.group(1))
                    return self
        except queue.Empty:
            self.stop()
            raise RuntimeError(
                f"{self.name} did not listen within {timeout}s:\n{self.log()}"
            ) from None

    def _pump(self) -> None:
        assert self.process and self.process.stderr
        for line in self.process.stderr:
            self.log_lines.append(line)
            if len(self.log_lines) > 5000:
                del self.log_lines[:1000]
            self._lines.put(line)
        self._lines.put(None)

    def log(self) -> str:
        return "".join(self.log_lines[-80:])

    def wait_for_line(self, needle: str, timeout: float = 10) -> str:
        """Block until the server writes a stderr line containing ``needle``."""
        try:
            while True:
                line = self._lines.get(timeout=timeout)
                if line is None:
                    raise AssertionError(f"{self.name} exited:\n{self.log()}")
                if needle in line:
                    return line
        except queue.Empty:
            raise AssertionError(
                f"{self.name} wrote no line with {needle!r} in {timeout}s:\n"
                f"{self.log()}"
            ) from None

    def kill(self) -> None:
        """SIGKILL: the process dies without any cleanup."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def server_env(**extra: str) -> dict[str, str]:
    """Environment for a live server: this run's key, no debug, loopback hosts."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(
        DJANGO_DEBUG="0",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL="INFO",
        REGISTER_RATE="100000/min",  # every test account comes from 127.0.0.1
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def migrate(env: dict[str, str]) -> None:
    """Create the schema in the database the environment points at."""
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )


class Deployment:
    """One database (and optionally Redis) shared by one or more live servers."""

    def __init__(
        self,
        *,
        database_url: str | None = None,
        redis_url: str | None = None,
        **extra_env: str,
    ) -> None:
        self.tmp = tempfile.mkdtemp(prefix="bamchat-live-")
        self.pg: ThrowawayPostgres | None = None
        base_db = database_url or os.environ.get("DATABASE_URL")
        env_db: dict[str, str] = {}
        if base_db:
            self.pg = ThrowawayPostgres(base_db)
            env_db["DATABASE_URL"] = self.pg.create()
        else:
            env_db["SQLITE_PATH"] = os.path.join(self.tmp, "live.sqlite3")
        if redis_url:
            env_db["REDIS_URL"] = redis_url
        self.env = server_env(**env_db, **extra_env)
        migrate(self.env)
        self.servers: list[LiveServer] = []

    def shell(self, code: str) -> None:
        """Run Python against this deployment's database (``User`` is in scope)."""
        subprocess.run(
            [
                sys.executable,
                "manage.py",
                "shell",
                "-c",
                "from accounts.models import User\n" + code,
            ],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
        )

    def create_staff(self, username: str, password: str = PASSWORD) -> None:
        """Create a staff superuser in this deployment's database."""
        subprocess.run(
            [
                sys.executable,
                "manage.py",
                "createsuperuser",
                "--noinput",
                "--username",
                username,
                "--email",
                f"{username}@example.com",
            ],
            cwd=ROOT,
            env={**self.env, "DJANGO_SUPERUSER_PASSWORD": password},
            check=True,
            capture_output=True,
        )

    def start_server(
        self, name: str = "server", daphne_args: tuple = (), **extra_env: str
    ) -> LiveServer:
        server = LiveServer(
            {**self.env, **extra_env}, name=name, daphne_args=daphne_args
        ).start()
        self.servers.append(server)
        return server

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        if self.pg:
            self.pg.drop()
        shutil.rmtree(self.tmp, ignore_errors=True)


@dataclass
class Account:
    id: str
    username: str
    access: str
    refresh: str


class Api:
    """REST client for one live server."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url
        self.session = aiohttp.ClientSession()

    async def close(self) -> None:
        await self.session.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json=None,
        expect=None,
        **kw,
    ):
        headers = kw.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        async with self.session.request(
            method, self.base + path, json=json, headers=headers, **kw
        ) as resp:
            body = (
                await resp.json(content_type=None) if resp.content_length != 0 else None
            )
            if expect is not None:
                assert resp.status == expect, (
                    f"{method} {path} -> {resp.status}, wanted {expect}: {body}"
                )
            return resp.status, body

    async def login(self, username: str, password: str = PASSWORD) -> Account:
        _, pair = await self.request(
            "POST",
            "/auth/token",
            json={"username": username, "password": password},
            expect=200,
        )
        _, me = await self.request("GET", "/auth/me", token=pair["access"], expect=200)
        return Account(me["id"], username, pair["access"], pair["refresh"])

    async def account(self, prefix: str = "user") -> Account:
        username = f"{prefix}_{uuid.uuid4().hex[:8]}"
        _, user = await self.request(
            "POST",
            "/auth/register",
            json={"username": username, "password": PASSWORD},
            expect=201,
        )
        _, pair = await self.request(
            "POST",
            "/auth/token",
            json={"username": username, "password": PASSWORD},
            expect=200,
        )
        return Account(
            id=user["id"],
            username=username,
            access=pair["access"],
            refresh=pair["refresh"],
        )

    async def bam(
        self, owner: Account, *others: Account, title: str = "Test BAM"
    ) -> dict:
        _, bam = await self.request(
            "POST",
            "/bams",
            token=owner.access,
            json={"title": title, "participantIds": [o.id for o in others]},
            expect=201,
        )
        return bam

    async def post_message(self, who: Account, bam_id: str, text: str, **extra) -> dict:
        _, message = await self.request(
            "POST",
            f"/bams/{bam_id}/messages",
            token=who.access,
            json={"text": text, **extra},
            expect=201,
        )
        return message


@dataclass
class Peer:
    """A python-socketio client that keeps every event it receives, in order."""

    url: str
    token: str | None
    transports: list[str] | None = None
    client: socketio.AsyncClient = field(init=False)
    events: dict[str, list] = field(
        init=False, default_factory=lambda: defaultdict(list)
    )
    _arrived: asyncio.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self._arrived = asyncio.Condition()
        self.client.on("*", self._record)
        self.disconnected = asyncio.Event()
        self.client.on("disconnect", self._on_disconnect)

    async def _on_disconnect(self, *args) -> None:
        self.disconnected.set()

    async def _record(self, event, *args) -> None:
        async with self._arrived:
            self.events[event].append(args[0] if len(args) == 1 else list(args))
            self._arrived.notify_all()

    async def connect(self, **kw) -> Peer:
        auth = {"token": self.token} if self.token is not None else None
        await self.client.connect(
            self.url,
            auth=auth,
            transports=self.transports or ["websocket"],
            wait_timeout=EVENT_TIMEOUT_S,
            **kw,
        )
        return self

    async def call(self, event: str, data=None, timeout: float = EVENT_TIMEOUT_S):
        if data is None:
            return await self.client.call(event, timeout=timeout)
        return await self.client.call(event, data, timeout=timeout)

    async def wait_for(
        self, event: str, count: int = 1, where=None, timeout: float = EVENT_TIMEOUT_S
    ) -> list:
        """Wait for ``count`` ``event``s (matching ``where``); return them."""

        def matching():
            return [e for e in self.events[event] if where is None or where(e)]

        async def arrived():
            async with self._arrived:
                await self._arrived.wait_for(lambda: len(matching()) >= count)

        try:
            await asyncio.wait_for(arrived(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"{count} {event!r} event(s) did not arrive within {timeout}s; "
                f"got {matching()!r}; "
                f"all events: { {k: len(v) for k, v in self.events.items()} }"
            ) from None
        return matching()

    def got(self, event: str, where=None) -> list:
        return [e for e in self.events[event] if where is None or where(e)]

    async def close(self) -> None:
        if self.client.connected:
            await self.client.disconnect()
