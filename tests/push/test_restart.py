"""Pushes wait in the database: a server killed while they are pending sends them
once it is back."""

import pytest

from tests.live import Api
from tests.push.service import Browser
from tests.push.test_delivery import subscribe

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
