"""Stalls under steady chat on three processes: Redis frozen (SIGSTOP) for 6 s,
one server process frozen for 6 s, and a PostgreSQL crash and restart.

Each test owns what it freezes or crashes. What must hold whatever the machine's
speed is asserted (nothing lost or repeated, in order, every acknowledged message
stored); the delivery latency figures are logged, not asserted.
"""

import asyncio
import logging
import os
import re
import shutil
import signal
import time

import pytest

from tests.deploy import Deployment
from tests.live import ci
from tests.realtime.stalls import Traffic
from tests.services import OwnPostgres

pytestmark = [pytest.mark.services, pytest.mark.live]

logger = logging.getLogger(__name__)

FAST_LIFE = {"REALTIME_HEARTBEAT_INTERVAL_S": "1", "REALTIME_PROCESS_DEAD_AFTER_S": "5"}
FREEZE_S = 6
REAPED = re.compile(r"Reaped dead server process \S+-(\d+)-[0-9a-f]+")


async def _freeze_under_traffic(nodes, pid: int, what: str) -> None:
    """Steady chat on ``nodes``; the process ``pid`` is frozen (SIGSTOP) for
    FREEZE_S, then thawed; the traffic runs on, then is checked."""
    traffic = await Traffic(nodes, per_node=5, every_s=0.1).start()
    try:
        await traffic.run_for(3)
        fault_at = time.monotonic()
        os.kill(pid, signal.SIGSTOP)
        try:
            await traffic.run_for(FREEZE_S)
        finally:
            os.kill(pid, signal.SIGCONT)
        back_at = time.monotonic()
        await traffic.run_for(8)
        await traffic.finish()
    finally:
        os.kill(pid, signal.SIGCONT)
        await traffic.close()
    figures = traffic.figures(fault_at, back_at)
    logger.warning("%s frozen %d s: %s", what, FREEZE_S, figures)


def reaped_pids(nodes) -> set[int]:
    """The pids of the processes the servers' logs say were reaped as dead (a
    process id is ``host-pid-random``)."""
    found = set()
    for node in nodes:
        for line in node.log_lines:
            match = REAPED.search(line)
            if match:
                found.add(int(match.group(1)))
    return found


@pytest.mark.stack_env(**FAST_LIFE)
async def test_redis_frozen_for_six_seconds_loses_and_repeats_nothing(private_stack):
    deployment, redis_server = private_stack
    nodes = deployment.start_servers("A", "B", "C")
    await _freeze_under_traffic(nodes, redis_server.process.pid, "Redis")
    # Liveness is the database's heartbeat: a Redis stall kills no process.
    assert not reaped_pids(nodes), "live processes were reaped after a Redis stall"


@pytest.mark.stack_env(**FAST_LIFE)
async def test_a_server_process_frozen_for_six_seconds_loses_and_repeats_nothing(
    private_stack,
):
    deployment, _ = private_stack
    nodes = deployment.start_servers("A", "B", "C")
    await _freeze_under_traffic(nodes, nodes[2].process.pid, "Server process")
    # Frozen longer than PROCESS_DEAD_AFTER_S, it alone may be reaped: its own
    # heartbeats resuming late do not make it reap the others.
    assert reaped_pids(nodes) <= {nodes[2].process.pid}, reaped_pids(nodes)


@pytest.fixture
def own_postgres():
    if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
        if ci():
            pytest.fail("initdb and pg_ctl are not installed; CI must run this")
        pytest.skip("PostgreSQL's initdb/pg_ctl not installed: test skipped")
    server = OwnPostgres().init()
    yield server
    server.close()


async def test_postgres_crash_and_restart_loses_and_repeats_nothing(
    own_postgres, private_redis
):
    deployment = Deployment(
        database_url=own_postgres.url, redis_url=private_redis.url, **FAST_LIFE
    )
    try:
        nodes = deployment.start_servers("A", "B", "C")
        traffic = await Traffic(nodes, per_node=5, every_s=0.1).start()
        try:
            await traffic.run_for(3)
            fault_at = time.monotonic()
            await asyncio.to_thread(own_postgres.crash)
            # Down longer than PROCESS_DEAD_AFTER_S: no heartbeat is written
            # meanwhile, and none of the processes may take that for death.
            await traffic.run_for(FREEZE_S)
            await asyncio.to_thread(own_postgres.start)
            back_at = time.monotonic()
            await traffic.run_for(8)
            await traffic.finish()
        finally:
            await traffic.close()
    finally:
        deployment.close()
    figures = traffic.figures(fault_at, back_at)
    logger.warning("PostgreSQL crashed and restarted: %s", figures)
    assert not reaped_pids(nodes), "live processes were reaped after the restart"
