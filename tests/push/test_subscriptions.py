"""Push subscriptions over REST against a live server: where they may point, the
same endpoint again, own subscriptions only, the VAPID key."""

import base64

import pytest

from tests.push.service import Browser, b64url, unb64url

pytestmark = pytest.mark.live


async def test_endpoints_outside_the_allowed_hosts_are_refused(push_api, push_service):
    bob = await push_api.account("bob")
    keys = Browser(push_service).subscription()["keys"]
    refused = [
        "https://push.example.com/send/abc",  # not an allowed host
        "http://fcm.googleapis.com/fcm/send/abc",  # allowed host, but plain http
        "https://fcm.googleapis.com:8443/fcm/send/abc",  # another port
        f"https://127.0.0.1:{push_service.port}/push/abc",  # the origin is http
        "http://127.0.0.1:9/push/abc",  # loopback, another port
        "http://169.254.169.254/latest/meta-data",
        "https://user:pw@fcm.googleapis.com/fcm/send/abc",
        "ftp://fcm.googleapis.com/abc",
        "not a url",
        # Spellings where urllib3 would read another host than the rule did.
        "https://127.0.0.1\\.notify.windows.com/x",
        f"http://127.0.0.1:{push_service.port}\\@fcm.googleapis.com/push/abc",
        "https://a..notify.windows.com/x",
        "https://127.0.0.1%5C.notify.windows.com/x",
        "https://127.0.0.1\n.notify.windows.com/x",
        "https://fcm.googleapis.com:/fcm/send/abc",
    ]
    for endpoint in refused:
        status, body = await push_api.request(
            "POST",
            "/push/subscriptions",
            token=bob.access,
            json={"endpoint": endpoint, "keys": keys},
        )
        assert status == 400, (endpoint, status, body)
        assert "endpoint" in body, (endpoint, body)
    _, listed = await push_api.request(
        "GET", "/push/subscriptions", token=bob.access, expect=200
    )
    assert listed == []

    status, body = await push_api.request(
        "POST",
        "/push/subscriptions",
        token=bob.access,
        json={"endpoint": "https://fcm.googleapis.com/fcm/send/abc", "keys": keys},
    )
    assert status == 201, body
    status, body = await push_api.request(
        "POST",
        "/push/subscriptions",
        token=bob.access,
        json={
            "endpoint": "https://fcm.googleapis.com/fcm/send/def",
            "keys": {"p256dh": "short", "auth": keys["auth"]},
        },
    )
    assert status == 400 and "keys" in body, body


async def test_p256dh_keys_that_are_not_points_on_p256_are_refused(
    push_api, push_service
):
    bob = await push_api.account("bob")
    subscription = Browser(push_service).subscription()
    point = unb64url(subscription["keys"]["p256dh"])
    off_curve = [
        b"\x04" + bytes(64),  # (0, 0)
        b"\x04" + b"\xff" * 64,  # coordinates past the field's prime
        point[:-1] + bytes([point[-1] ^ 1]),  # a real point with y nudged
    ]
    for raw in off_curve:
        keys = {**subscription["keys"], "p256dh": b64url(raw)}
        status, body = await push_api.request(
            "POST",
            "/push/subscriptions",
            token=bob.access,
            json={**subscription, "keys": keys},
        )
        assert status == 400, (raw.hex(), status, body)
        assert "p256dh" in body["keys"][0], body
    _, listed = await push_api.request(
        "GET", "/push/subscriptions", token=bob.access, expect=200
    )
    assert listed == []


async def test_same_endpoint_again_keeps_the_id_and_updates_the_keys(
    push_api, push_service
):
    alice, bob = await push_api.account("alice"), await push_api.account("bob")
    bam = await push_api.bam(alice, bob)
    old, new = Browser(push_service), Browser(push_service)
    new.path, new.endpoint = old.path, old.endpoint  # same endpoint, new keys
    _, first = await push_api.request(
        "POST",
        "/push/subscriptions",
        token=bob.access,
        json=old.subscription(),
        expect=201,
    )
    assert set(first) >= {"id", "endpoint", "createdAt"}
    assert first["endpoint"] == old.endpoint
    _, again = await push_api.request(
        "POST",
        "/push/subscriptions",
        token=bob.access,
        json=new.subscription(),
        expect=200,
    )
    assert again["id"] == first["id"]

    message = await push_api.post_message(alice, bam["id"], "new keys")
    payload = await new.wait_push(message["id"])  # decrypts only with the new keys
    assert payload["body"] == "new keys"


async def test_another_users_endpoint_moves_only_with_its_keys(push_api, push_service):
    alice, bob, eve = [await push_api.account(n) for n in ("alice", "bob", "eve")]
    bam = await push_api.bam(alice, bob)
    browser = Browser(push_service)
    _, bobs = await push_api.request(
        "POST",
        "/push/subscriptions",
        token=bob.access,
        json=browser.subscription(),
        expect=201,
    )
    # Eve knows the endpoint but not the keys: refused, Bob keeps his device.
    thief = Browser(push_service)
    thief.path, thief.endpoint = browser.path, browser.endpoint
    status, body = await push_api.request(
        "POST", "/push/subscriptions", token=eve.access, json=thief.subscription()
    )
    assert status == 403 and "endpoint" in body, (status, body)
    _, listed = await push_api.request(
        "GET", "/push/subscriptions", token=eve.access, expect=200
    )
    assert listed == []
    _, listed = await push_api.request(
        "GET", "/push/subscriptions", token=bob.access, expect=200
    )
    assert [s["id"] for s in listed] == [bobs["id"]]
    message = await push_api.post_message(alice, bam["id"], "still Bob's")
    assert (await browser.wait_push(message["id"]))["body"] == "still Bob's"

    # The same browser logged in as Eve sends the same keys: the device moves.
    _, moved = await push_api.request(
        "POST",
        "/push/subscriptions",
        token=eve.access,
        json=browser.subscription(),
        expect=200,
    )
    assert moved["id"] == bobs["id"]
    _, listed = await push_api.request(
        "GET", "/push/subscriptions", token=bob.access, expect=200
    )
    assert listed == []
    _, listed = await push_api.request(
        "GET", "/push/subscriptions", token=eve.access, expect=200
    )
    assert [s["id"] for s in listed] == [bobs["id"]]


async def test_subscriptions_are_private_to_their_owner(push_api, push_service):
    bob, eve = await push_api.account("bob"), await push_api.account("eve")
    _, mine = await push_api.request(
        "POST",
        "/push/subscriptions",
        token=bob.access,
        json=Browser(push_service).subscription(),
        expect=201,
    )
    _, listed = await push_api.request(
        "GET", "/push/subscriptions", token=eve.access, expect=200
    )
    assert listed == []
    path = f"/push/subscriptions/{mine['id']}"
    await push_api.request("DELETE", path, token=eve.access, expect=404)
    await push_api.request(
        "DELETE", "/push/subscriptions/x", token=eve.access, expect=404
    )
    await push_api.request("DELETE", path, token=bob.access, expect=204)
    await push_api.request("DELETE", path, token=bob.access, expect=404)
    await push_api.request("GET", "/push/subscriptions", expect=401)


async def test_vapid_key_is_an_uncompressed_p256_point_and_stays(push_api):
    bob = await push_api.account("bob")
    _, first = await push_api.request(
        "GET", "/push/vapid-key", token=bob.access, expect=200
    )
    raw = base64.urlsafe_b64decode(first["publicKey"] + "==")
    assert len(raw) == 65 and raw[0] == 4
    _, again = await push_api.request(
        "GET", "/push/vapid-key/", token=bob.access, expect=200
    )
    assert again == first
    await push_api.request("GET", "/push/vapid-key", expect=401)


async def test_demo_page_and_service_worker_are_served(push_api):
    async with push_api.session.get(push_api.base + "/push/demo") as response:
        assert response.status == 200
        page = await response.text()
    assert "pushManager.subscribe" in page and "/push/vapid-key" in page
    async with push_api.session.get(push_api.base + "/push/sw.js") as response:
        assert response.status == 200
        assert response.content_type == "text/javascript"
        assert "showNotification" in await response.text()
