"""Hypothesis throws generated payloads at every client event of a live server.

Each example must get a coded ack, leave the connection up (payloads stay under
the packet limit), leave the server serving another client, and store a message
only when the ack says one was stored.
"""

import asyncio
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.live import Api, Peer

pytestmark = pytest.mark.live

CODES = {"invalid", "not_found", "forbidden", "rate_limited", "too_large", "internal"}
EVENTS = [
    "join-bam",
    "leave-bam",
    "send-message",
    "typing-start",
    "typing-stop",
    "status-change",
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=300),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)
binary = st.binary(max_size=2000)


class Loop:
    """An event loop in a thread, so synchronous Hypothesis examples can await."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def arena(server):
    loop = Loop()

    async def setup():
        api = Api(server.url)
        fuzzer, observer = await api.account("fuzzer"), await api.account("observer")
        bam = await api.bam(fuzzer, observer)
        f = await Peer(server.url, fuzzer.access).connect()
        o = await Peer(server.url, observer.access).connect()
        await o.call("join-bam", bam["id"])
        return api, observer, bam, f, o

    api, observer, bam, f, o = loop.run(setup())
    yield loop, api, observer, bam, f, o

    async def teardown():
        await f.close()
        await o.close()
        await api.close()

    loop.run(teardown())
    loop.close()


def with_real_bam(payload, bam_id):
    """Half the dict payloads aim at the real BAM, so valid writes are possible."""
    if isinstance(payload, dict) and len(payload) % 2 == 0:
        return {**payload, "bamId": bam_id}
    return payload


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    event=st.sampled_from(EVENTS) | st.text(min_size=1, max_size=30),
    payload=json_values | binary | st.dictionaries(st.text(max_size=10), binary),
    extra=st.lists(json_values, max_size=2),
)
def test_generated_payloads_get_coded_acks_and_break_nothing(
    arena, event, payload, extra
):
    loop, api, observer, bam, f, o = arena
    payload = with_real_bam(payload, bam["id"])

    async def example():
        _, before = await api.request(
            "GET", f"/bams/{bam['id']}/messages?limit=200", token=observer.access
        )
        ack = await f.client.call(
            event, (payload, *extra) if extra else payload, timeout=10
        )
        assert isinstance(ack, dict) and isinstance(ack.get("ok"), bool), ack
        if not ack["ok"]:
            assert ack["error"]["code"] in CODES, ack
            assert isinstance(ack["error"]["message"], str) and ack["error"]["message"]
        assert f.client.connected, "a payload under the size limit closed the socket"
        # A round trip for the other client (unknown events are answered, unlimited).
        pong = await o.call("probe")
        assert pong["error"]["code"] == "invalid", "the server stopped serving others"
        _, after = await api.request(
            "GET", f"/bams/{bam['id']}/messages?limit=200", token=observer.access
        )
        stored = len(after["results"]) - len(before["results"])
        wrote = (
            event == "send-message"
            and ack["ok"]
            and ack["message"]["id"] not in {m["id"] for m in before["results"]}
        )
        assert stored == (1 if wrote else 0), (event, payload, ack)

    loop.run(example())
