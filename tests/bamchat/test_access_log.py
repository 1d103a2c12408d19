"""No token, password or Engine.IO sid reaches a log line."""

import asyncio
import logging
import uuid

import aiohttp
import pytest
from daphne.management.commands.runserver import Command as RunserverCommand

from tests.live import Api

SECRET = "hunter2-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def logged_server(deployment):
    """A server whose daphne access log goes to stderr, where the test reads it."""
    return deployment.start_server(
        "accesslog", daphne_args=("--access-log", "/dev/stderr")
    )


@pytest.mark.live
def test_access_log_has_no_query_strings(logged_server):
    server = logged_server

    async def traffic() -> tuple[str, str]:
        api = Api(server.url)
        try:
            owner = await api.account("logged")
            base = f"{server.url}/socket.io/?EIO=4&transport=polling"
            async with api.session.get(f"{base}&token={owner.access}") as resp:
                assert resp.status == 200, await resp.text()
                handshake = await resp.text()
            sid = handshake.split('"sid":"', 1)[1].split('"', 1)[0]
            async with api.session.post(f"{base}&sid={sid}", data="40") as resp:
                assert resp.status == 200
            async with api.session.get(f"{base}&sid={sid}") as resp:
                assert resp.status == 200
            async with api.session.get(
                f"{server.url}/bams?token={owner.access}&password={SECRET}"
            ) as resp:
                assert resp.status == 401
            return owner.access, sid
        finally:
            await api.close()

    access, sid = asyncio.run(traffic())
    marker = f"/access-log-marker-{uuid.uuid4().hex}"
    asyncio.run(_get(server.url + marker + f"?sid={sid}"))
    server.wait_for_line(marker)  # every earlier request has been logged by now

    log = "".join(server.log_lines)
    assert '"GET /socket.io/' in log, f"no access lines at all:\n{log[-3000:]}"
    for secret, what in [(access, "access token"), (sid, "sid"), (SECRET, "secret")]:
        assert secret not in log, f"the {what} reached the log:\n{log[-3000:]}"
    assert "/socket.io/?[redacted]" in log


async def _get(url: str) -> None:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        await resp.read()


@pytest.mark.parametrize("status", [200, 404, 500])
def test_runserver_access_logger_redacts_query_strings(caplog, status):
    caplog.set_level(logging.INFO, logger="django.channels.server")
    RunserverCommand().log_action(
        "http",
        "complete",
        {
            "path": f"/socket.io/?EIO=4&transport=polling&sid=S1D&token={SECRET}",
            "status": status,
            "method": "GET",
            "client": "127.0.0.1:5000",
            "time_taken": 0.01,
            "size": 10,
        },
    )
    assert "/socket.io/?[redacted]" in caplog.text
    assert SECRET not in caplog.text and "S1D" not in caplog.text
