"""Thousands of sockets from one test: raw Engine.IO v4 WebSockets in one loop.

A python-socketio ``AsyncClient`` costs a few tasks and timers per socket; a
``SwarmSocket`` is one aiohttp WebSocket and one reader task, so a test can hold
3,000 of them on two cores. It answers pings, resolves acks and records the
events it receives. ``populate`` creates the accounts and BAMs in one shell call.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from dataclasses import dataclass, field

import aiohttp

from tests.live import EVENT_TIMEOUT_S, ROOT

# Sockets opened at once while a swarm connects (the rest wait their turn).
CONNECT_CONCURRENCY = 200
# A socket refused during a storm (a quick 503 while the server sheds load)
# tries again this many times, after the server's own advice of a short pause.
CONNECT_ATTEMPTS = 20
CONNECT_RETRY_S = 0.25


@dataclass
class Population:
    """Accounts (``{id, username, access}``) and BAMs (``{id, members}``) created
    for a swarm, and a watcher who shares a BAM with every one of them."""

    users: list[dict]
    bams: list[dict]
    watcher: dict


def populate(env: dict, *, users: int, bam_size: int, prefix: str) -> Population:
    """Create ``users`` accounts in BAMs of ``bam_size`` (each with one watcher
    account in every BAM), with an access token each, in one process."""
    code = f"""
import json
from rest_framework_simplejwt.tokens import AccessToken
from accounts.models import User
from messaging.models import Bam, Membership
watcher = User.objects.create_user(username="{prefix}_watcher", password=None)
made = User.objects.bulk_create(
    [User(username=f"{prefix}_{{i}}", username_key=f"{prefix}_{{i}}")
     for i in range({users})]
)
made = list(User.objects.filter(username__startswith="{prefix}_").exclude(
    pk=watcher.pk).order_by("pk"))
bams = []
for start in range(0, len(made), {bam_size}):
    group = made[start:start + {bam_size}]
    bam = Bam.objects.create(title=f"swarm {{start}}", owner=watcher)
    Membership.objects.bulk_create(
        [Membership(bam=bam, user=watcher, role="owner")]
        + [Membership(bam=bam, user=u) for u in group]
    )
    bams.append({{"id": str(bam.pk), "members": [str(u.pk) for u in group]}})
def account(u):
    return {{"id": str(u.pk), "username": u.username,
             "access": str(AccessToken.for_user(u))}}
print(json.dumps({{"users": [account(u) for u in made], "bams": bams,
                  "watcher": account(watcher)}}))
"""
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, f"populate failed:\n{done.stderr[-3000:]}"
    data = json.loads(done.stdout.strip().splitlines()[-1])
    return Population(**data)


@dataclass(eq=False)
class SwarmSocket:
    """One raw Socket.IO client: connect, call with an ack, record events."""

    swarm: Swarm
    base_url: str
    token: str
    ws: aiohttp.ClientWebSocketResponse | None = None
    sid: str | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    _acks: dict[int, asyncio.Future] = field(default_factory=dict)
    _next_id: int = 0
    _reader: asyncio.Task | None = None

    async def connect(self) -> SwarmSocket:
        url = self.base_url.replace("http://", "ws://")
        url += "/socket.io/?EIO=4&transport=websocket"
        last = None
        for _ in range(CONNECT_ATTEMPTS):
            try:
                self.ws = await self.swarm.session.ws_connect(url, autoping=True)
                opened = await self.ws.receive_str(timeout=EVENT_TIMEOUT_S)
                assert opened.startswith("0"), f"no Engine.IO open: {opened!r}"
                await self.ws.send_str("40" + json.dumps({"token": self.token}))
                while True:
                    answer = await self.ws.receive_str(timeout=EVENT_TIMEOUT_S)
                    if answer.startswith("40"):
                        self.sid = json.loads(answer[2:])["sid"]
                        break
                    if answer.startswith("44"):
                        raise AssertionError(f"connect refused: {answer}")
                    self._handle(answer)
                self._reader = asyncio.get_running_loop().create_task(self._read())
                return self
            except (aiohttp.ClientError, TimeoutError, TypeError) as exc:
                last = exc
                if self.ws is not None:
                    await self.ws.close()
                self.ws = None
                await asyncio.sleep(CONNECT_RETRY_S)  # the server asked for back-off
        raise AssertionError(
            f"could not connect after {CONNECT_ATTEMPTS} tries: {last}"
        )

    async def call(self, event: str, data, timeout: float = EVENT_TIMEOUT_S):
        """Emit ``event`` with an ack id and wait for the ack."""
        assert self.ws is not None
        self._next_id += 1
        ack_id = self._next_id
        future = asyncio.get_running_loop().create_future()
        self._acks[ack_id] = future
        await self.ws.send_str(f"42{ack_id}" + json.dumps([event, data]))
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise AssertionError(f"no ack to {event} within {timeout}s") from None

    def _handle(self, text: str) -> None:
        if text.startswith("42"):
            event, *args = json.loads(text[2:])
            self.swarm.record(self, event, args[0] if args else None)
        elif text.startswith("43"):
            body = text[2:]
            digits = len(body) - len(body.lstrip("0123456789"))
            future = self._acks.pop(int(body[:digits]), None)
            if future is not None and not future.done():
                future.set_result(json.loads(body[digits:])[0])

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for msg in self.ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                if msg.data == "2":
                    await self.ws.send_str("3")
                else:
                    self._handle(msg.data)
        finally:
            self.closed.set()

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await self._reader


class Swarm:
    """Many SwarmSockets sharing one HTTP session and one event log."""

    def __init__(self) -> None:
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, force_close=True)
        )
        self.sockets: list[SwarmSocket] = []
        self.watchers: list = []  # callables (socket, event, data)

    def record(self, sock: SwarmSocket, event: str, data) -> None:
        for watcher in self.watchers:
            watcher(sock, event, data)

    async def connect_all(self, base_url: str, tokens: list[str]) -> list[SwarmSocket]:
        """Connect one socket per token, ``CONNECT_CONCURRENCY`` at a time."""
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def one(token):
            async with gate:
                return await SwarmSocket(self, base_url, token).connect()

        made = await asyncio.gather(*(one(t) for t in tokens))
        self.sockets.extend(made)
        return made

    async def call_all(self, calls, *, timeout: float = EVENT_TIMEOUT_S) -> list:
        """Run ``(socket, event, data)`` calls concurrently; their acks in order."""
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def one(sock, event, data):
            async with gate:
                return await sock.call(event, data, timeout=timeout)

        return await asyncio.gather(*(one(*c) for c in calls))

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in self.sockets), return_exceptions=True)
        await self.session.close()
