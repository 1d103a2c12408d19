"""Real clients for end-to-end tests (the servers are in ``tests.deploy``).

``Api`` is a REST client (aiohttp); ``Peer`` is a python-socketio ``AsyncClient``
that records every event it receives so a test can wait for one; ``RawSocket``
speaks Engine.IO frames; ``ChatApp`` reconnects and rejoins as an app does.
Everything they receive is checked against the server's published contracts.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import socketio

from tests.contract import check_response, published, report

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery-42"
EVENT_TIMEOUT_S = 10


def ci() -> bool:
    """Whether this run is CI, where nothing may be skipped."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


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
            check_response(
                published(self.base), method, path, resp.status, resp.content_type, body
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
