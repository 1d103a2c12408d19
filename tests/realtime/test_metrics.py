"""``GET /metrics`` of a live server: the figures follow what real clients do, and
only staff or the scraper's token may read them."""

import asyncio
import secrets

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.live import Api, Peer
from tests.realtime.test_security import admin_session

pytestmark = pytest.mark.live

METRICS_TOKEN = secrets.token_urlsafe(32)
STAFF = "metrics_staff"
CLIENT_EVENTS = {
    "join-bam",
    "leave-bam",
    "send-message",
    "typing-start",
    "typing-stop",
    "edit-message",
    "delete-message",
    "react",
    "mark-read",
    "status-change",
}


class Figures:
    """One scrape, parsed: a sample's value by its name and labels (0 if absent)."""

    def __init__(self, text: str) -> None:
        self.values: dict[tuple[str, frozenset], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                key = (sample.name, frozenset(sample.labels.items()))
                self.values[key] = sample.value

    def get(self, name: str, **labels) -> float:
        return self.values.get((name, frozenset(labels.items())), 0.0)

    def has(self, name: str) -> bool:
        return any(key[0] == name for key in self.values)

    def label_values(self, name: str, label: str) -> set[str]:
        return {dict(key[1])[label] for key in self.values if key[0] == name}


async def scrape(api: Api, token: str) -> Figures:
    """This server's figures, read with a Bearer token (staff JWT or the scraper's)."""
    status, text = await get_metrics(api, {"Authorization": f"Bearer {token}"})
    assert status == 200, text
    return Figures(text)


async def get_metrics(api: Api, headers: dict | None = None) -> tuple[int, str]:
    async with api.session.get(f"{api.base}/metrics", headers=headers or {}) as resp:
        return resp.status, await resp.text()


@pytest.fixture(scope="module")
def metrics_server(deployment):
    """A server of this module's own (its sockets are the test's alone) with a
    scraper token; staff may read it too."""
    deployment.create_staff(STAFF)
    return deployment.start_server("metrics", METRICS_TOKEN=METRICS_TOKEN)


@pytest.fixture
async def metrics_api(metrics_server):
    client = Api(metrics_server.url)
    yield client
    await client.close()


async def test_figures_count_connections_events_writes_and_lag(metrics_api):
    api = metrics_api
    staff = await api.login(STAFF)
    alice, bob = await api.account("alice"), await api.account("bob")
    bam = await api.bam(alice, bob)
    before = await scrape(api, staff.access)

    a = Peer(api.base, alice.access)
    b = Peer(api.base, bob.access)
    polled = Peer(api.base, bob.access, transports=["polling"])
    peers = (a, b, polled)
    try:
        for peer in peers:
            await peer.connect()
            assert (await peer.call("join-bam", {"bamId": bam["id"]}))["ok"]
        for text in ("one", "two"):
            ack = await a.call("send-message", {"bamId": bam["id"], "content": text})
            assert ack["ok"], ack
        refused = await a.call("send-message", {"bamId": bam["id"], "content": 42})
        assert refused["error"]["code"] == "invalid"
        unknown = await a.call("made-up-event", {"bamId": bam["id"]})
        assert unknown["error"]["code"] == "invalid"
        reserved = await a.call("message", "a name the library keeps")
        assert reserved["error"]["code"] == "invalid"
        await api.post_message(bob, bam["id"], "three")
        for peer in peers:
            await peer.wait_for("new-message", count=3)

        after = await scrape(api, staff.access)
        connections = "bamchat_socketio_connections"
        assert after.get(connections, transport="websocket") == 2
        assert after.get(connections, transport="polling") == 1
    finally:
        for peer in peers:
            await peer.close()

    def delta(name, **labels):
        return after.get(name, **labels) - before.get(name, **labels)

    received = "bamchat_socketio_events_received_total"
    assert delta(received, event="send-message", outcome="ok") == 2
    assert delta(received, event="send-message", outcome="invalid") == 1
    assert delta(received, event="join-bam", outcome="ok") == 3
    assert delta(received, event="other", outcome="invalid") == 2
    assert after.label_values(received, "event") <= CLIENT_EVENTS | {"other"}
    # Three messages, each one packet for the three sockets in the room.
    assert delta("bamchat_socketio_events_emitted_total", event="new-message") == 3
    assert delta("bamchat_socketio_event_deliveries_total", event="new-message") == 9
    # Both doors (Socket.IO and REST) are timed; the refused message is not.
    assert delta("bamchat_message_write_seconds_count") == 3
    assert delta("bamchat_message_write_seconds_sum") > 0
    # One observation per BAM event, however many sockets got it.
    assert delta("bamchat_delivery_lag_seconds_count") == 3
    assert after.get("bamchat_delivery_lag_seconds_bucket", le="+Inf") >= 3
    for name in (
        "bamchat_realtime_listener_restarts_total",
        "bamchat_channel_layer_publish_failures_total",
        "bamchat_channel_layer_up",
        "bamchat_push_queue_tasks",
        "bamchat_push_failures_total",
        "process_resident_memory_bytes",
        "python_gc_collections_total",
    ):
        assert after.has(name), name
    assert after.get("bamchat_channel_layer_up") == 1


async def test_only_staff_and_the_scraper_token_read_figures(
    metrics_api, metrics_server, server
):
    api = metrics_api
    status, body = await get_metrics(api)
    assert status == 401 and "bamchat_" not in body, body
    async with api.session.get(f"{api.base}/metrics") as resp:
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")

    member = await api.account("member")
    status, body = await get_metrics(api, {"Authorization": f"Bearer {member.access}"})
    assert status == 403 and "bamchat_" not in body, body

    wrong = secrets.token_urlsafe(32)
    status, body = await get_metrics(api, {"Authorization": f"Bearer {wrong}"})
    assert status == 401 and "bamchat_" not in body, body

    figures = await scrape(api, METRICS_TOKEN)
    assert figures.has("bamchat_socketio_connections")
    staff = await api.login(STAFF)
    assert (await scrape(api, staff.access)).has("bamchat_socketio_connections")

    # A server without METRICS_TOKEN takes the same token for a bad JWT.
    tokenless = Api(server.url)
    try:
        headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        status, body = await get_metrics(tokenless, headers)
        assert status == 401 and "bamchat_" not in body, body
    finally:
        await tokenless.close()

    # Staff signed in to the admin read it with their session.
    session = await admin_session(metrics_server.url, STAFF)
    try:
        async with session.get(f"{metrics_server.url}/metrics") as resp:
            assert resp.status == 200
            assert "bamchat_socketio_connections" in await resp.text()
    finally:
        await session.close()


async def test_openmetrics_is_served_to_a_scraper_that_asks(metrics_api):
    headers = {
        "Authorization": f"Bearer {METRICS_TOKEN}",
        "Accept": "application/openmetrics-text; version=1.0.0; charset=utf-8",
    }
    async with metrics_api.session.get(
        f"{metrics_api.base}/metrics", headers=headers
    ) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
        assert (await resp.text()).endswith("# EOF\n")
    async with metrics_api.session.get(
        f"{metrics_api.base}/metrics", headers={"Accept": "text/plain"}
    ) as resp:
        assert resp.status == 401
        assert (await resp.json())["detail"]


async def test_publish_failures_are_counted_while_redis_is_down(private_stack):
    deployment, redis_server = private_stack
    server = deployment.start_server("metrics-redis", METRICS_TOKEN=METRICS_TOKEN)
    api = Api(server.url)
    try:
        alice = await api.account("alice")
        bam = await api.bam(alice)
        before = await scrape(api, METRICS_TOKEN)
        assert before.get("bamchat_channel_layer_up") == 1
        redis_server.stop()
        await api.post_message(alice, bam["id"], "nobody hears this live")
        # The bus logs the outage once it has counted the failed publish.
        await asyncio.to_thread(server.wait_for_line, "live events are dropped", 15)
        during = await scrape(api, METRICS_TOKEN)
        failures = "bamchat_channel_layer_publish_failures_total"
        assert during.get(failures, sender="bus") > before.get(failures, sender="bus")
        assert during.get("bamchat_channel_layer_up") == 0
    finally:
        await api.close()
