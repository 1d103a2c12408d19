"""The realtime gate in front of the Socket.IO engine, called as ASGI."""

import pytest
from django.test import override_settings

from realtime.asgi import SocketGate
from realtime.server import sio


class Recorder:
    """An inner ASGI app that only notes that it was called."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope, receive, send):
        self.calls += 1


async def answer(
    gate, *, kind="http", query=b"EIO=4&transport=polling", host=b"127.0.0.1"
):
    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request"}

    scope = {"type": kind, "query_string": query, "headers": [(b"host", host)]}
    await gate(scope, receive, send)
    return sent


@pytest.fixture
def gate():
    inner = Recorder()
    saved = sio.process.lag
    yield SocketGate(inner, sio), inner
    sio.process.lag = saved


async def test_new_sessions_are_shed_while_the_loop_is_late(gate):
    gate, inner = gate
    sio.process.lag = 0.0
    assert await answer(gate) == [] and inner.calls == 1
    sio.process.lag = 5.0
    refused = await answer(gate)
    assert refused[0]["status"] == 503 and inner.calls == 1
    closed = await answer(gate, kind="websocket", query=b"EIO=4&transport=websocket")
    assert closed == [{"type": "websocket.close", "code": 1013}] and inner.calls == 1
    # A running session (it has a sid) is always served.
    await answer(gate, query=b"EIO=4&transport=polling&sid=abc")
    assert inner.calls == 2


@override_settings(ALLOWED_HOSTS=["chat.example.org"])
async def test_hosts_django_refuses_are_refused(gate):
    gate, inner = gate
    sio.process.lag = 0.0
    refused = await answer(gate, host=b"evil.example")
    assert refused[0]["status"] == 400 and inner.calls == 0
    await answer(gate, host=b"chat.example.org:443")
    assert inner.calls == 1
