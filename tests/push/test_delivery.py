"""Push notifications end to end: a live server, a local push service, browsers that
decrypt what arrives. Who gets a push, what it carries, and how failures go."""

import pytest

from tests.live import Peer
from tests.push.conftest import PUSH_MAX_DEVICES, PUSH_SUBJECT, PUSH_TTL_S
from tests.push.service import Browser, check_push

pytestmark = pytest.mark.live


async def subscribe(api, account, browser) -> dict:
    _, subscription = await api.request(
        "POST",
        "/push/subscriptions",
        token=account.access,
        json=browser.subscription(),
        expect=201,
    )
    return subscription


async def vapid_key(api, account) -> str:
    _, body = await api.request(
        "GET", "/push/vapid-key", token=account.access, expect=200
    )
    return body["publicKey"]


async def test_offline_recipient_gets_one_push_per_message(push_api, push_service):
    alice, bob = await push_api.account("alice"), await push_api.account("bob")
    bam = await push_api.bam(alice, bob, title="Weekend plans")
    browser = Browser(push_service)
    subscription = await subscribe(push_api, bob, browser)
    key = await vapid_key(push_api, bob)

    first = await push_api.post_message(alice, bam["id"], "x" * 150)
    second = await push_api.post_message(alice, bam["id"], "Bring snacks")
    payload = await browser.wait_push(first["id"])
    assert payload == {
        "type": "new-message",
        "bamId": bam["id"],
        "messageId": first["id"],
        "senderId": alice.id,
        "senderName": alice.username,
        "title": "Weekend plans",
        "body": "x" * 100,
    }
    assert (await browser.wait_push(second["id"]))["body"] == "Bring snacks"

    # A third message settles the queue: by its push, a second push of the first
    # two would have gone too.
    third = await push_api.post_message(alice, bam["id"], "See you")
    await browser.wait_push(third["id"])
    for message in (first, second, third):
        assert len(browser.delivered_for(message["id"])) == 1, message["id"]
    requests = push_service.to(browser.path)
    assert len(requests) == 3
    for request in requests:
        check_push(
            request,
            vapid_key=key,
            origin=push_service.origin,
            ttl=PUSH_TTL_S,
            subject=PUSH_SUBJECT,
        )
        assert request.headers["Topic"] == f"bam-{bam['id']}"
    # Alice, the sender, has no device; her own messages never reach Bob's twice.
    _, listed = await push_api.request(
        "GET", "/push/subscriptions", token=bob.access, expect=200
    )
    assert [s["id"] for s in listed] == [subscription["id"]]


async def test_connected_recipient_gets_none(push_api, push_service, push_server):
    alice, bob, carol = [await push_api.account(n) for n in ("alice", "bob", "carol")]
    bam = await push_api.bam(alice, bob, carol)
    bob_browser, carol_browser = Browser(push_service), Browser(push_service)
    await subscribe(push_api, bob, bob_browser)
    await subscribe(push_api, carol, carol_browser)
    peer = await Peer(push_server.url, bob.access).connect()
    try:
        message = await push_api.post_message(alice, bam["id"], "Bob sees this live")
        # Bob's socket is not in the BAM's room: the socket tells him by notification.
        await peer.wait_for(
            "notification", where=lambda n: n["messageId"] == message["id"]
        )
        await carol_browser.wait_push(message["id"])
        settle = await push_api.post_message(alice, bam["id"], "and this one")
        await carol_browser.wait_push(settle["id"])
    finally:
        await peer.close()
    assert push_service.to(bob_browser.path) == []


async def test_muted_bam_gets_none(push_api, push_service):
    alice, bob, carol = [await push_api.account(n) for n in ("alice", "bob", "carol")]
    outsider = await push_api.account("outsider")
    bam = await push_api.bam(alice, bob, carol)
    bob_browser, carol_browser = Browser(push_service), Browser(push_service)
    await subscribe(push_api, bob, bob_browser)
    await subscribe(push_api, carol, carol_browser)
    path = f"/bams/{bam['id']}/membership"
    _, body = await push_api.request(
        "PATCH", path, token=bob.access, json={"muted": True}, expect=200
    )
    assert body == {"bamId": bam["id"], "userId": bob.id, "muted": True}
    await push_api.request(
        "PATCH", path, token=outsider.access, json={"muted": True}, expect=404
    )
    await push_api.request(
        "PATCH", path, token=bob.access, json={"muted": "yes"}, expect=400
    )

    muted = await push_api.post_message(alice, bam["id"], "Bob muted this BAM")
    await carol_browser.wait_push(muted["id"])
    settle = await push_api.post_message(alice, bam["id"], "still muted")
    await carol_browser.wait_push(settle["id"])
    assert push_service.to(bob_browser.path) == []

    await push_api.request(
        "PATCH", path, token=bob.access, json={"muted": False}, expect=200
    )
    unmuted = await push_api.post_message(alice, bam["id"], "Bob hears this")
    await bob_browser.wait_push(unmuted["id"])
    assert len(push_service.to(bob_browser.path)) == 1


async def test_gone_subscription_is_deleted_and_sent_nothing_more(
    push_api, push_service, push_server
):
    alice, bob, carol = [await push_api.account(n) for n in ("alice", "bob", "carol")]
    bam = await push_api.bam(alice, bob, carol)
    bob_browser, carol_browser = Browser(push_service), Browser(push_service)
    bob_subscription = await subscribe(push_api, bob, bob_browser)
    await subscribe(push_api, carol, carol_browser)
    push_service.script(bob_browser.path, (410, {}))

    gone = await push_api.post_message(alice, bam["id"], "Bob's browser forgot us")
    await carol_browser.wait_push(gone["id"])
    push_server.wait_for_line(f"Push subscription {bob_subscription['id']} gone")
    _, listed = await push_api.request(
        "GET", "/push/subscriptions", token=bob.access, expect=200
    )
    assert listed == []

    after = await push_api.post_message(alice, bam["id"], "nobody at Bob's endpoint")
    await carol_browser.wait_push(after["id"])
    assert [r.status for r in push_service.to(bob_browser.path)] == [410]


async def test_throttled_and_failing_service_is_retried_and_delivers_once(
    push_api, push_service
):
    alice, bob = await push_api.account("alice"), await push_api.account("bob")
    bam = await push_api.bam(alice, bob)
    browser = Browser(push_service)
    await subscribe(push_api, bob, browser)
    push_service.script(browser.path, (429, {"Retry-After": "1"}), (503, {}))

    message = await push_api.post_message(alice, bam["id"], "Third time lucky")
    await browser.wait_push(message["id"])
    requests = push_service.to(browser.path)
    assert [r.status for r in requests] == [429, 503, 201]
    assert requests[1].at - requests[0].at >= 0.9, "Retry-After: 1 was not honoured"
    assert {browser.decrypt(r)["messageId"] for r in requests} == {message["id"]}

    settle = await push_api.post_message(alice, bam["id"], "settles the queue")
    await browser.wait_push(settle["id"])
    assert len(browser.delivered_for(message["id"])) == 1


async def test_devices_past_the_cap_replace_the_oldest_registered(
    push_api, push_service
):
    alice, bob = await push_api.account("alice"), await push_api.account("bob")
    bam = await push_api.bam(alice, bob)
    browsers = [Browser(push_service) for _ in range(PUSH_MAX_DEVICES + 5)]
    for browser in browsers[:PUSH_MAX_DEVICES]:
        await subscribe(push_api, bob, browser)
    # Registering the first again makes it the most recently registered.
    await push_api.request(
        "POST",
        "/push/subscriptions",
        token=bob.access,
        json=browsers[0].subscription(),
        expect=200,
    )
    for browser in browsers[PUSH_MAX_DEVICES:]:
        await subscribe(push_api, bob, browser)

    gone, kept = browsers[1:6], [browsers[0], *browsers[6:]]
    _, listed = await push_api.request(
        "GET", "/push/subscriptions", token=bob.access, expect=200
    )
    assert len(listed) == PUSH_MAX_DEVICES
    assert {s["endpoint"] for s in listed} == {b.endpoint for b in kept}

    message = await push_api.post_message(alice, bam["id"], "to every device")
    for browser in kept:
        await browser.wait_push(message["id"])
    settle = await push_api.post_message(alice, bam["id"], "settles the queue")
    for browser in kept:
        await browser.wait_push(settle["id"])
    assert sum(len(push_service.to(b.path)) for b in browsers) == 2 * PUSH_MAX_DEVICES
    assert all(push_service.to(b.path) == [] for b in gone)


async def test_the_endpoint_is_stored_and_sent_as_its_normalised_url(
    push_api, push_service
):
    alice, bob = await push_api.account("alice"), await push_api.account("bob")
    bam = await push_api.bam(alice, bob)
    browser = Browser(push_service)
    spelled = browser.endpoint.replace(
        f"http://127.0.0.1:{push_service.port}",
        f"HTTP://127.0.0.1:0{push_service.port}",
    )
    _, stored = await push_api.request(
        "POST",
        "/push/subscriptions",
        token=bob.access,
        json={**browser.subscription(), "endpoint": spelled},
        expect=201,
    )
    assert stored["endpoint"] == browser.endpoint
    _, listed = await push_api.request(
        "GET", "/push/subscriptions", token=bob.access, expect=200
    )
    assert [s["endpoint"] for s in listed] == [browser.endpoint]

    message = await push_api.post_message(alice, bam["id"], "to the checked host")
    await browser.wait_push(message["id"])
    [request] = push_service.to(browser.path)
    assert request.headers["Host"] == f"127.0.0.1:{push_service.port}"
    check_push(
        request,
        vapid_key=await vapid_key(push_api, bob),
        origin=push_service.origin,
        ttl=PUSH_TTL_S,
        subject=PUSH_SUBJECT,
    )
