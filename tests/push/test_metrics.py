"""Push figures in ``GET /metrics``: the queue's depth read from the task rows, and
the failed sends of the process whose worker made them."""

import asyncio
import secrets

import pytest

from tests.live import Api
from tests.push.conftest import push_deployment_for
from tests.push.service import Browser
from tests.push.test_delivery import subscribe
from tests.realtime.test_metrics import scrape

pytestmark = pytest.mark.live

METRICS_TOKEN = secrets.token_urlsafe(32)
QUEUE = "bamchat_push_queue_tasks"
FAILURES = "bamchat_push_failures_total"


async def test_queue_depth_and_a_refused_push(push_service):
    deployment = push_deployment_for(push_service, METRICS_TOKEN=METRICS_TOKEN)
    try:
        idle = deployment.start_server("no-worker", TASKS_IN_PROCESS_WORKER="0")
        api = Api(idle.url)
        try:
            alice, bob = await api.account("alice"), await api.account("bob")
            bam = await api.bam(alice, bob)
            browser = Browser(push_service)
            await subscribe(api, bob, browser)
            push_service.script(browser.path, (400, {}))
            assert (await scrape(api, METRICS_TOKEN)).get(QUEUE, state="due") == 0
            await api.post_message(alice, bam["id"], "waits for a worker")
            queued = await scrape(api, METRICS_TOKEN)
            assert queued.get(QUEUE, state="due") == 1
            assert queued.get(QUEUE, state="scheduled") == 0
        finally:
            await api.close()

        # A process with a worker drains the queue; the push service refuses.
        worker = deployment.start_server("worker", TASKS_IN_PROCESS_WORKER="1")
        api = Api(worker.url)
        try:
            await scrape(api, METRICS_TOKEN)  # a first request starts the worker
            # Logged once the failure is counted.
            await asyncio.to_thread(worker.wait_for_line, "failed (HTTP 400", 15)
            figures = await scrape(api, METRICS_TOKEN)
            assert figures.get(FAILURES, reason="refused") == 1
            assert figures.get(FAILURES, reason="gone") == 0
            assert figures.get(QUEUE, state="due") == 0
        finally:
            await api.close()
        # The process that sent nothing counts no failure.
        api = Api(idle.url)
        try:
            figures = await scrape(api, METRICS_TOKEN)
            assert figures.get(FAILURES, reason="refused") == 0
        finally:
            await api.close()
    finally:
        deployment.close()
