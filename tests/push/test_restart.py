"""Pushes wait in the database: a server killed while they are pending sends them
once it is back; of a queue of app pushes, nothing is lost but the send in flight
and nothing is sent twice."""

import pytest

from tests.live import Api
from tests.push.service import Browser
from tests.push.test_delivery import subscribe
from tests.push.test_mobile import apns_token, fcm_token, register

pytestmark = pytest.mark.live


async def test_pending_pushes_are_sent_after_a_killed_server_restarts(
    push_api, push_service, push_server
):
    alice, bob = await push_api.account("alice"), await push_api.account("bob")
    bam = await push_api.bam(alice, bob)
    browser = Browser(push_service)
    await subscribe(push_api, bob, browser)
    # The first try meets an outage; the retry is due after the kill.
    push_service.script(browser.path, (503, {"Retry-After": "2"}))

    message = await push_api.post_message(alice, bam["id"], "Survives a crash")
    push_server.wait_for_line("deferred 2.0s (HTTP 503")
    push_server.kill()
    assert [r.status for r in push_service.to(browser.path)] == [503]

    push_server.start(port=push_server.port)
    api = Api(push_server.url)
    try:
        # Any request starts the process's machinery, its task worker included
        # (a load balancer's health check does it in production).
        await api.request("GET", "/health", expect=200)
        payload = await browser.wait_push(message["id"])
        assert payload["body"] == "Survives a crash"
        settle = await api.post_message(alice, bam["id"], "and after")
        await browser.wait_push(settle["id"])
    finally:
        await api.close()
    assert len(browser.delivered_for(message["id"])) == 1
    assert [r.status for r in push_service.to(browser.path)] == [503, 201, 201]


APP_MESSAGES = 6


async def test_app_pushes_queued_when_the_worker_is_killed_are_sent_once(
    mobile_server, fcm_service, apns_service
):
    api = Api(mobile_server.url)
    try:
        alice, bob = await api.account("alice"), await api.account("bob")
        bam = await api.bam(alice, bob)
        android, iphone = fcm_token(), apns_token()
        await register(api, bob, "fcm", android)
        await register(api, bob, "apns", iphone)
        # The first FCM send reaches the service but gets no answer: the worker
        # is in the middle of it when killed, and the rest of the queue waits.
        fcm_service.hold(android)
        messages = [
            await api.post_message(alice, bam["id"], f"message {n}")
            for n in range(APP_MESSAGES)
        ]
        in_flight = await fcm_service.wait_request(android)
    finally:
        await api.close()
    mobile_server.kill()
    fcm_service.release()
    in_flight_id = in_flight.body["message"]["data"]["messageId"]
    sent_before = len(fcm_service.to(android)) + len(apns_service.to(iphone))
    assert sent_before < 2 * APP_MESSAGES, "the queue was empty when killed"

    mobile_server.start(port=mobile_server.port)
    api = Api(mobile_server.url)
    try:
        # Any request starts the process's machinery, its task worker included.
        await api.request("GET", "/health", expect=200)
        for message in messages:
            await apns_service.wait_push(iphone, message["id"])
            if message["id"] != in_flight_id:
                await fcm_service.wait_push(android, message["id"])
        settle = await api.post_message(alice, bam["id"], "settles the queue")
        await fcm_service.wait_push(android, settle["id"])
        await apns_service.wait_push(iphone, settle["id"])
    finally:
        await api.close()
    for message in messages:
        assert len(apns_service.delivered(iphone, message["id"])) == 1, message
        # The send in flight reached the service before the kill; the restarted
        # worker does not send it again.
        assert len(fcm_service.delivered(android, message["id"])) == 1, message
    assert len(fcm_service.to(android)) == APP_MESSAGES + 1
    assert len(apns_service.to(iphone)) == APP_MESSAGES + 1
