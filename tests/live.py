"""Live servers and real clients for end-to-end tests.

``LiveServer`` runs ``daphne bamchat.asgi:application`` in a subprocess on a
loopback port chosen by the OS and waits for it to say it is listening.
``Api`` is a REST client (aiohttp); ``Peer`` is a python-socketio ``AsyncClient``
that records every event it receives so a test can wait for one.
"""

from __future__ import annotations

import asyncio
import json
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
from urllib.parse import urlparse, urlsplit, urlunparse

import aiohttp
import socketio

from tests.contract import published, report

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
        self._lines = queue.Queue()  # a restart reads only the new process
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
        lines = self._lines
        for line in self.process.stderr:
            self.log_lines.append(line)
            if len(self.log_lines) > 5000:
                del self.log_lines[:1000]
            lines.put(line)
        lines.put(None)

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
        if base_db and not base_db.startswith("sqlite:"):  # a run's own SQLite file
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
            if resp.content_type == "application/json" and not path.startswith("/api/"):
                check = published(self.base).response_errors
                report(
                    f"REST {method} {path}",
                    check(method, path, resp.status, body),
                    body,
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
    ordered: list[tuple[str, object]] = field(init=False, default_factory=list)
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
        data = args[0] if len(args) == 1 else list(args)
        report(f"event {event}", contract_of(self.url).event_errors(event, data), data)
        async with self._arrived:
            self.events[event].append(data)
            self.ordered.append((event, data))
            self._arrived.notify_all()

    async def connect(self, **kw) -> Peer:
        prefetch_contract(self.url)
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
            ack = await self.client.call(event, timeout=timeout)
        else:
            ack = await self.client.call(event, data, timeout=timeout)
        report(f"ack of {event}", contract_of(self.url).ack_errors(event, ack), ack)
        return ack

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


class RawSocket:
    """A hostile client: Engine.IO v4 frames over a bare WebSocket, no library."""

    def __init__(self, base_url: str) -> None:
        self.url = base_url.replace("http://", "ws://") + (
            "/socket.io/?EIO=4&transport=websocket"
        )
        self.session = aiohttp.ClientSession()
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.sid: str | None = None
        self._next_id = 0

    async def connect(self, token: str) -> RawSocket:
        self.ws = await self.session.ws_connect(self.url)
        opened = await self.receive_text()
        assert opened.startswith("0"), f"expected an Engine.IO open, got {opened!r}"
        await self.ws.send_str("40" + json.dumps({"token": token}))
        connected = await self.receive_text()
        while connected.startswith("42"):  # events may come before the answer
            connected = await self.receive_text()
        assert connected.startswith("40"), f"connect refused: {connected!r}"
        self.sid = json.loads(connected[2:])["sid"]
        return self

    async def receive_text(self, timeout: float = EVENT_TIMEOUT_S) -> str:
        """The next text frame, answering Engine.IO pings on the way."""
        assert self.ws is not None
        while True:
            msg = await self.ws.receive(timeout=timeout)
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise ConnectionError(f"socket closed or not text: {msg.type!r}")
            if msg.data == "2":
                await self.ws.send_str("3")
                continue
            return msg.data

    async def call(self, event: str, *args, timeout: float = EVENT_TIMEOUT_S):
        """Send ``42<id>[event, ...args]`` and return the ack's arguments."""
        self._next_id += 1
        ack_id = self._next_id
        await self.send_text(f"42{ack_id}" + json.dumps([event, *args]))
        ack = await self.ack(ack_id, timeout=timeout)
        if isinstance(event, str) and len(ack) == 1:
            errors = contract_of(self.url).ack_errors(event, ack[0])
            report(f"ack of {event}", errors, ack[0])
        return ack

    async def ack(self, ack_id: int, timeout: float = EVENT_TIMEOUT_S):
        """Wait for the ack ``43<id>[...]``; events met on the way are dropped."""
        prefix = f"43{ack_id}["
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"no ack {ack_id} within {timeout}s")
            frame = await self.receive_text(timeout=left)
            if frame.startswith(prefix):
                return json.loads(frame[len(prefix) - 1 :])

    async def send_text(self, frame: str) -> None:
        assert self.ws is not None
        await self.ws.send_str(frame)

    async def send_bytes(self, frame: bytes) -> None:
        assert self.ws is not None
        await self.ws.send_bytes(frame)

    async def closed_within(self, timeout: float) -> bool:
        """Whether the server closes the socket within ``timeout`` seconds."""
        assert self.ws is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (left := deadline - loop.time()) > 0:
            try:
                msg = await self.ws.receive(timeout=left)
            except TimeoutError:
                return False
            if msg.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.CLOSING,
                aiohttp.WSMsgType.ERROR,
            ):
                return True
            if msg.type == aiohttp.WSMsgType.TEXT and msg.data == "2":
                await self.ws.send_str("3")
        return False

    async def close(self) -> None:
        if self.ws is not None and not self.ws.closed:
            await self.ws.close()
        await self.session.close()


def contract_of(url: str):
    """The published contracts of the server at ``url`` (any ws/http form)."""
    parts = urlsplit(url.replace("ws://", "http://", 1))
    return published(f"http://{parts.netloc}")


def prefetch_contract(url: str) -> None:
    """Fetch the contracts before events need them; a server that does not
    answer now (a test of refusals) is asked again when a payload arrives."""
    try:
        contract_of(url)
    except OSError:
        pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    """A redis-server of the test's own on a free loopback port, restartable."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

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


class FailoverProxy:
    """What a load balancer does for these tests: one address on loopback that
    forwards each new TCP connection to the first backend that accepts it."""

    def __init__(self, backends: list[int]) -> None:
        self.backends = backends
        self.server: asyncio.base_events.Server | None = None
        self.port: int | None = None
        self._pipes: set[asyncio.Task] = set()

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
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    @staticmethod
    async def _pipe(src, dst) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            dst.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)


class ChatApp:
    """A client app: reconnects by itself and rejoins with the last seq it saw."""

    def __init__(self, url: str, token: str, bam_id: str) -> None:
        self.client = socketio.AsyncClient(
            reconnection=True, reconnection_delay=0.2, reconnection_delay_max=0.5
        )
        self.url, self.token, self.bam_id = url, token, bam_id
        self.seqs: list[int] = []
        self.arrived = asyncio.Condition()
        self.joined = asyncio.Event()
        self.rejoined = asyncio.Event()
        self.joins = 0
        self.client.on("new-message", self._message)
        self.client.on("connect", self._connected)

    async def _message(self, payload) -> None:
        errors = contract_of(self.url).event_errors("new-message", payload)
        report("event new-message", errors, payload)
        if payload["bamId"] == self.bam_id:
            async with self.arrived:
                self.seqs.append(payload["seq"])
                self.arrived.notify_all()

    async def wait_seq(self, seq: int, timeout: float = EVENT_TIMEOUT_S) -> None:
        """Wait until the message with this seq has arrived."""

        async def seen():
            async with self.arrived:
                await self.arrived.wait_for(lambda: seq in self.seqs)

        try:
            await asyncio.wait_for(seen(), timeout)
        except TimeoutError:
            raise AssertionError(f"seq {seq} never arrived; got {self.seqs}") from None

    async def _connected(self) -> None:
        self.client.start_background_task(self._join)

    async def _join(self) -> None:
        payload = {"bamId": self.bam_id}
        if self.seqs:
            payload["sinceSeq"] = max(self.seqs)
        ack = await self.client.call("join-bam", payload, timeout=EVENT_TIMEOUT_S)
        report(
            "ack of join-bam", contract_of(self.url).ack_errors("join-bam", ack), ack
        )
        assert ack["ok"], ack
        self.joins += 1
        self.joined.set()
        if self.joins > 1:
            self.rejoined.set()

    async def wait_joined(self) -> None:
        """Wait for the first join's ack."""
        try:
            await asyncio.wait_for(self.joined.wait(), EVENT_TIMEOUT_S)
        except TimeoutError:
            raise AssertionError("join-bam was never acknowledged") from None

    async def start(self) -> ChatApp:
        prefetch_contract(self.url)
        await self.client.connect(
            self.url, auth={"token": self.token}, transports=["websocket"]
        )
        return self


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
