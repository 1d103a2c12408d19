"""Two server processes, two task workers, one queue: each push goes out once."""

import asyncio

import pytest

from tests.live import Api
from tests.push.service import Browser
from tests.push.test_delivery import subscribe

pytestmark = pytest.mark.live

MESSAGES = 12


async def test_two_workers_racing_send_each_push_once(
    push_api, push_service, push_deployment, push_server
):
    second = push_deployment.start_server("push-2")
    second_api = Api(second.url)
    alice, bob = await push_api.account("alice"), await push_api.account("bob")
    bam = await push_api.bam(alice, bob)
    browser = Browser(push_service)
    await subscribe(push_api, bob, browser)

    # Writes through both processes (which also starts the second one's worker).
    apis = (push_api, second_api)
    try:
        messages = await asyncio.gather(
            *(
                apis[n % 2].post_message(alice, bam["id"], f"message {n}")
                for n in range(MESSAGES)
            )
        )
    finally:
        await second_api.close()
    for message in messages:
        await browser.wait_push(message["id"])
    settle = await push_api.post_message(alice, bam["id"], "settles both queues")
    await browser.wait_push(settle["id"])
    for message in messages:
        assert len(browser.delivered_for(message["id"])) == 1, message["id"]
    assert len(push_service.to(browser.path)) == MESSAGES + 1
