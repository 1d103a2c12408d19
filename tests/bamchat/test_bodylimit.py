"""Request body limits: on a live daphne, too much is refused as soon as it is
declared or received, on every path, before daphne has buffered the body; under
any other ASGI server the middleware applies the same rule."""

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from bamchat.bodylimit import BodySizeLimit, request_body_limit
from tests.deploy import Deployment
from tests.live import Api

MIB = 1024 * 1024
ANSWER_TIMEOUT_S = 10


@pytest.fixture(scope="module")
def body_server():
    """A live server with the default body limits (1 MiB anonymous, 26 MiB else)."""
    deployment = Deployment()
    try:
        yield deployment.start_server("bodies")
    finally:
        deployment.close()


@pytest_asyncio.fixture
async def token(body_server) -> str:
    api = Api(body_server.url)
    try:
        return (await api.account("big")).access
    finally:
        await api.close()


class RawRequest:
    """One HTTP/1.1 request written by hand: headers first, the body when the test
    says, the answer read whenever it comes."""

    def __init__(self, url: str) -> None:
        self.host, port = url.removeprefix("http://").split(":")
        self.port = int(port)
        self.answer: asyncio.Task | None = None

    async def send_head(self, path: str, headers: dict[str, str]) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        lines = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await self.writer.drain()
        self.answer = asyncio.create_task(self._read_answer())

    async def send(self, data: bytes) -> bool:
        """Send more body; False once the server has closed the connection."""
        try:
            self.writer.write(data)
            await self.writer.drain()
            return True
        except ConnectionError:
            return False

    async def _read_answer(self) -> tuple[int, dict]:
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        return status, json.loads(await self.reader.readexactly(length))

    async def wait_answer(self, what: str) -> tuple[int, dict]:
        try:
            return await asyncio.wait_for(asyncio.shield(self.answer), ANSWER_TIMEOUT_S)
        except TimeoutError:
            raise AssertionError(
                f"no answer within {ANSWER_TIMEOUT_S}s {what}"
            ) from None

    def close(self) -> None:
        if self.answer is not None:
            self.answer.cancel()
        self.writer.close()


@pytest_asyncio.fixture
async def raw(body_server):
    made: list[RawRequest] = []

    def make() -> RawRequest:
        made.append(RawRequest(body_server.url))
        return made[-1]

    yield make
    for request in made:
        request.close()


@pytest.mark.live
@pytest.mark.parametrize("credentials", [False, True])
async def test_a_declared_300_mb_body_is_refused_before_it_is_sent(
    raw, token, credentials
):
    request = raw()
    headers = {"Content-Type": "application/json", "Content-Length": str(300 * MIB)}
    if credentials:
        headers["Authorization"] = f"Bearer {token}"
    await request.send_head("/bams" if credentials else "/auth/token", headers)
    status, body = await request.wait_answer("to the headers alone")
    assert status == 413, body
    assert body["code"] == "too_large", body


@pytest.mark.live
async def test_an_anonymous_25_mb_form_is_refused_while_health_answers(
    raw, body_server
):
    request = raw()
    await request.send_head(
        "/auth/token",
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "Content-Length": str(25 * MIB),
        },
    )
    # A quarter of the body: the upload is still under way for all that follows.
    assert await request.send(b"a=1&" * (25 * MIB // 16))
    async with aiohttp.ClientSession() as session:
        async with session.get(
            body_server.url + "/health",
            timeout=aiohttp.ClientTimeout(total=ANSWER_TIMEOUT_S),
        ) as health:
            assert health.status == 200
    status, body = await request.wait_answer("while the body was still coming")
    assert status == 413, body
    assert body["code"] == "too_large", body


def peak_rss_bytes(pid: int) -> int:
    """The process's largest resident set so far (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc")


@pytest.mark.live
async def test_a_chunked_body_past_the_limit_is_cut_without_buffering_it(
    raw, token, body_server
):
    peak_before = peak_rss_bytes(body_server.process.pid)
    request = raw()
    await request.send_head(
        "/bams",
        {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/octet-stream",
            "Transfer-Encoding": "chunked",
        },
    )
    chunk = b"%x\r\n" % MIB + b"x" * MIB + b"\r\n"
    sent = 0
    while sent < 300 and not request.answer.done() and await request.send(chunk):
        sent += 1
    status, body = await request.wait_answer(f"after {sent} MiB of a chunked body")
    assert status == 413, body
    assert body["code"] == "too_large", body
    assert sent < 300, "the whole 300 MiB went in before the answer"
    growth = peak_rss_bytes(body_server.process.pid) - peak_before
    assert growth < 50 * MIB, f"the server's peak memory grew by {growth // MIB} MiB"


async def asgi_post(headers: list, chunks: list[bytes]) -> tuple[int, int]:
    """POST through the ASGI guard to an app that reads the whole body; the answer's
    status and how many body bytes the app was given."""
    given = {"bytes": 0}

    async def app(scope, receive, send):
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            given["bytes"] += len(message["body"])
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    messages = [
        {"type": "http.request", "body": chunk, "more_body": n < len(chunks) - 1}
        for n, chunk in enumerate(chunks)
    ]
    sent = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    guard = BodySizeLimit(app, limit=lambda scope: request_body_limit(scope["headers"]))
    scope = {"type": "http", "path": "/auth/token", "headers": headers}
    await guard(scope, receive, send)
    return sent[0]["status"], given["bytes"]


async def test_other_servers_get_the_same_limits_from_the_middleware(settings):
    settings.HTTP_MAX_ANONYMOUS_BODY_BYTES = 100
    settings.HTTP_MAX_BODY_BYTES = 1000
    declared = [(b"content-length", b"101")]
    assert await asgi_post(declared, [b"x" * 101]) == (413, 0)
    assert await asgi_post([], [b"x" * 60, b"x" * 60]) == (413, 60)
    authorized = [(b"authorization", b"Bearer t")]
    assert await asgi_post(authorized, [b"x" * 600] * 2) == (413, 600)
    assert await asgi_post(authorized, [b"x" * 500] * 2) == (200, 1000)
    session = [(b"cookie", f"a=1; {settings.SESSION_COOKIE_NAME}=s".encode())]
    assert await asgi_post(session, [b"x" * 500]) == (200, 500)
