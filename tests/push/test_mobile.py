"""Mobile push end to end: a live server, Google's OAuth and FCM endpoints and an
APNs HTTP/2 server on loopback, and a browser beside them. Who gets a push, what
it carries, and how each service's failures go."""

import secrets

import pytest
import pytest_asyncio

from tests.live import Api, Peer
from tests.push.service import Browser
from tests.push.test_delivery import subscribe

pytestmark = pytest.mark.live


@pytest_asyncio.fixture
async def api(mobile_server):
    client = Api(mobile_server.url)
    yield client
    await client.close()


def fcm_token() -> str:
    return f"{secrets.token_urlsafe(16)}:APA91b{secrets.token_urlsafe(100)}"


def apns_token() -> str:
    return secrets.token_hex(32)


async def register(api, account, platform: str, token: str, expect=201) -> dict:
    _, device = await api.request(
        "POST",
        "/push/devices",
        token=account.access,
        json={"platform": platform, "token": token, "appId": "bam.app", "locale": "en"},
        expect=expect,
    )
    return device


async def devices_of(api, account) -> list[dict]:
    _, listed = await api.request(
        "GET", "/push/devices", token=account.access, expect=200
    )
    return listed


async def test_offline_recipient_gets_one_push_per_device(
    api, push_service, fcm_service, apns_service
):
    alice, bob = await api.account("alice"), await api.account("bob")
    bam = await api.bam(alice, bob, title="Weekend plans")
    other = await api.bam(alice, bob, title="Other")
    browser, android, iphone = Browser(push_service), fcm_token(), apns_token()
    await subscribe(api, bob, browser)
    await register(api, bob, "fcm", android)
    device = await register(api, bob, "apns", iphone)
    assert device["platform"] == "apns" and device["token"] == iphone

    earlier = await api.post_message(alice, other["id"], "in another BAM")
    await apns_service.wait_push(iphone, earlier["id"])
    message = await api.post_message(alice, bam["id"], "x" * 150)
    await browser.wait_push(message["id"])
    sent = await fcm_service.wait_push(android, message["id"])
    ios = await apns_service.wait_push(iphone, message["id"])

    data = {
        "type": "new-message",
        "bamId": bam["id"],
        "messageId": message["id"],
        "seq": str(message["seq"]),
    }
    collapse = f"bam-{bam['id']}"
    assert sent["notification"] == {"title": "Weekend plans", "body": "x" * 100}
    assert sent["data"] == data
    assert sent["android"] == {"priority": "high", "collapse_key": collapse}
    # The badge: Bob's unread messages in both BAMs.
    assert sent["apns"]["payload"]["aps"] == {"thread-id": collapse, "badge": 2}
    assert ios.http_version == "2"
    assert ios.body == {
        "aps": {
            "alert": {"title": "Weekend plans", "body": "x" * 100},
            "badge": 2,
            "sound": "default",
            "thread-id": collapse,
        },
        **data,
    }
    assert ios.headers["apns-collapse-id"] == collapse
    first = apns_service.delivered(iphone, earlier["id"])[0].body["aps"]
    assert (first["alert"]["title"], first["badge"]) == ("Other", 1)

    # A later message settles the queue: by its pushes, a second push would be seen.
    settle = await api.post_message(alice, bam["id"], "settles")
    await fcm_service.wait_push(android, settle["id"])
    await apns_service.wait_push(iphone, settle["id"])
    await browser.wait_push(settle["id"])
    assert len(fcm_service.to(android)) == 3
    assert len(apns_service.to(iphone)) == 3
    assert len(browser.delivered_for(message["id"])) == 1
    # One OAuth token served every FCM send.
    assert len({r.bearer for r in fcm_service.to(android)}) == 1


async def test_connected_and_muted_recipients_get_none(
    api, mobile_server, fcm_service, apns_service
):
    alice, bob, carol, dave = [
        await api.account(n) for n in ("alice", "bob", "carol", "dave")
    ]
    bam = await api.bam(alice, bob, carol, dave)
    bob_phone, carol_phone, dave_phone = fcm_token(), apns_token(), fcm_token()
    await register(api, bob, "fcm", bob_phone)
    await register(api, carol, "apns", carol_phone)
    await register(api, dave, "fcm", dave_phone)
    await api.request(
        "PATCH",
        f"/bams/{bam['id']}/membership",
        token=carol.access,
        json={"muted": True},
        expect=200,
    )
    peer = await Peer(mobile_server.url, bob.access).connect()
    try:
        message = await api.post_message(alice, bam["id"], "Bob is here")
        await peer.wait_for(
            "notification", where=lambda n: n["messageId"] == message["id"]
        )
        await fcm_service.wait_push(dave_phone, message["id"])
        settle = await api.post_message(alice, bam["id"], "and this")
        await fcm_service.wait_push(dave_phone, settle["id"])
    finally:
        await peer.close()
    assert fcm_service.to(bob_phone) == []
    assert apns_service.to(carol_phone) == []


async def test_devices_are_per_user_and_move_to_the_newest(api):
    alice, bob = await api.account("alice"), await api.account("bob")
    token = apns_token()
    first = await register(api, alice, "apns", token)
    again = await register(api, alice, "apns", token.upper(), expect=200)
    assert again["id"] == first["id"]
    moved = await register(api, bob, "apns", token, expect=200)
    assert moved["id"] == first["id"]
    assert await devices_of(api, alice) == []
    assert [d["id"] for d in await devices_of(api, bob)] == [first["id"]]
    path = f"/push/devices/{first['id']}"
    await api.request("DELETE", path, token=alice.access, expect=404)
    await api.request("DELETE", path, token=bob.access, expect=204)
    assert await devices_of(api, bob) == []
    for body in (
        {"platform": "hms", "token": "abc"},
        {"platform": "apns", "token": "not hex"},
        {"platform": "fcm", "token": "a/b"},
        {"platform": "fcm", "token": "abc", "locale": "<script>"},
    ):
        await api.request(
            "POST", "/push/devices", token=bob.access, json=body, expect=400
        )


async def test_unregistered_tokens_are_deleted(
    api, mobile_server, fcm_service, apns_service
):
    alice, bob, carol = [await api.account(n) for n in ("alice", "bob", "carol")]
    bam = await api.bam(alice, bob, carol)
    dead_android, dead_iphone, bad_iphone = fcm_token(), apns_token(), apns_token()
    live_android = fcm_token()
    await register(api, bob, "fcm", dead_android)
    await register(api, bob, "apns", dead_iphone)
    await register(api, bob, "apns", bad_iphone)
    await register(api, carol, "fcm", live_android)
    unregistered = {
        "code": 404,
        "status": "NOT_FOUND",
        "details": [
            {
                "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                "errorCode": "UNREGISTERED",
            }
        ],
    }
    fcm_service.script(dead_android, (404, {}, unregistered))
    apns_service.script(dead_iphone, (410, {}, "Unregistered"))
    apns_service.script(bad_iphone, (400, {}, "BadDeviceToken"))

    gone = await api.post_message(alice, bam["id"], "anyone there?")
    await fcm_service.wait_push(live_android, gone["id"])
    for kind in ("fcm device", "apns device", "apns device"):
        mobile_server.wait_for_line(f"Push {kind}")
    assert await devices_of(api, bob) == []
    after = await api.post_message(alice, bam["id"], "nobody at Bob's")
    await fcm_service.wait_push(live_android, after["id"])
    assert [r.status for r in fcm_service.to(dead_android)] == [404]
    assert [r.status for r in apns_service.to(dead_iphone)] == [410]
    assert [r.status for r in apns_service.to(bad_iphone)] == [400]


async def test_throttled_and_failing_services_are_retried_and_deliver_once(
    api, fcm_service, apns_service
):
    alice, bob = await api.account("alice"), await api.account("bob")
    bam = await api.bam(alice, bob)
    android, iphone = fcm_token(), apns_token()
    await register(api, bob, "fcm", android)
    await register(api, bob, "apns", iphone)
    fcm_service.script(
        android,
        (429, {"Retry-After": "1"}, {"code": 429, "status": "RESOURCE_EXHAUSTED"}),
        (503, {}, {"code": 503, "status": "UNAVAILABLE"}),
    )
    apns_service.script(
        iphone, (429, {"Retry-After": "1"}, "TooManyRequests"), (503, {}, "")
    )

    message = await api.post_message(alice, bam["id"], "third time lucky")
    await fcm_service.wait_push(android, message["id"])
    await apns_service.wait_push(iphone, message["id"])
    for requests in (fcm_service.to(android), apns_service.to(iphone)):
        assert [r.status for r in requests] == [429, 503, 200]
        assert requests[1].at - requests[0].at >= 0.9, "Retry-After was not honoured"

    settle = await api.post_message(alice, bam["id"], "settles")
    await fcm_service.wait_push(android, settle["id"])
    await apns_service.wait_push(iphone, settle["id"])
    assert len(fcm_service.delivered(android, message["id"])) == 1
    assert len(apns_service.delivered(iphone, message["id"])) == 1


async def test_an_expired_oauth_token_is_refreshed(api, fcm_service):
    alice, bob = await api.account("alice"), await api.account("bob")
    bam = await api.bam(alice, bob)
    android = fcm_token()
    await register(api, bob, "fcm", android)
    first = await api.post_message(alice, bam["id"], "one")
    await fcm_service.wait_push(android, first["id"])
    issued = fcm_service.token_requests
    second = await api.post_message(alice, bam["id"], "two")
    await fcm_service.wait_push(android, second["id"])
    assert fcm_service.token_requests == issued, "a live token was not reused"

    fcm_service.expire_tokens()
    third = await api.post_message(alice, bam["id"], "three")
    sent = await fcm_service.wait_push(android, third["id"])
    assert sent["data"]["messageId"] == third["id"]
    assert fcm_service.token_requests == issued + 1
    assert len(fcm_service.delivered(android, third["id"])) == 1
