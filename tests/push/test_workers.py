"""Task workers: two processes racing send each push once, to browsers and to
app devices; the README's worker command sends pushes for servers that run
none."""

import asyncio
import subprocess
import sys

import pytest

from tests.live import ROOT, Api
from tests.push.conftest import push_deployment_for
from tests.push.service import Browser
from tests.push.test_delivery import subscribe
from tests.push.test_mobile import apns_token, fcm_token, register

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


async def test_two_workers_racing_send_each_app_push_once(
    mobile_deployment, mobile_server, fcm_service, apns_service
):
    second = mobile_deployment.start_server("mobile-2")
    apis = (Api(mobile_server.url), Api(second.url))
    try:
        alice, bob = await apis[0].account("alice"), await apis[0].account("bob")
        bam = await apis[0].bam(alice, bob)
        android, iphone = fcm_token(), apns_token()
        await register(apis[0], bob, "fcm", android)
        await register(apis[0], bob, "apns", iphone)
        # Writes through both processes (which also starts the second one's worker).
        messages = await asyncio.gather(
            *(
                apis[n % 2].post_message(alice, bam["id"], f"message {n}")
                for n in range(MESSAGES)
            )
        )
        for message in messages:
            await fcm_service.wait_push(android, message["id"])
            await apns_service.wait_push(iphone, message["id"])
        settle = await apis[0].post_message(alice, bam["id"], "settles both queues")
        await fcm_service.wait_push(android, settle["id"])
        await apns_service.wait_push(iphone, settle["id"])
    finally:
        for api in apis:
            await api.close()
    for message in messages:
        assert len(fcm_service.delivered(android, message["id"])) == 1, message
        assert len(apns_service.delivered(iphone, message["id"])) == 1, message
    assert len(fcm_service.to(android)) == MESSAGES + 1
    assert len(apns_service.to(iphone)) == MESSAGES + 1


def start_db_worker(env: dict[str, str]) -> subprocess.Popen:
    """The README's worker command, with the servers' environment."""
    return subprocess.Popen(
        [sys.executable, "manage.py", "db_worker", "--interval", "0.1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_a_dedicated_db_worker_sends_the_pushes(push_service):
    deployment = push_deployment_for(push_service, TASKS_IN_PROCESS_WORKER="0")
    worker = None
    try:
        server = deployment.start_server("no-worker")
        api = Api(server.url)
        try:
            alice, bob = await api.account("alice"), await api.account("bob")
            bam = await api.bam(alice, bob)
            browser = Browser(push_service)
            await subscribe(api, bob, browser)
            message = await api.post_message(alice, bam["id"], "queued for a worker")
            assert push_service.to(browser.path) == []
            worker = start_db_worker(deployment.env)
            payload = await browser.wait_push(message["id"])
            assert payload["body"] == "queued for a worker"
        finally:
            await api.close()
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=10)
        deployment.close()
