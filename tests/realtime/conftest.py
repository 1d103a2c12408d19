import os
import shutil

import pytest

from tests.deploy import Deployment
from tests.live import ci
from tests.services import PrivateRedis, service_reachable

PG_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture
def private_stack(request):
    """A deployment on the machine's PostgreSQL and a private, restartable Redis;
    the test's ``stack_env`` marker adds environment for its servers."""
    if not service_reachable("127.0.0.1", 5432):
        if ci():
            pytest.fail("PostgreSQL is not reachable on 127.0.0.1; CI must run this")
        pytest.skip("PostgreSQL not reachable on 127.0.0.1: multi-process test skipped")
    marker = request.node.get_closest_marker("stack_env")
    extra = marker.kwargs if marker else {}
    redis_server = PrivateRedis()
    redis_server.start()
    deployment = Deployment(database_url=PG_URL, redis_url=redis_server.url, **extra)
    yield deployment, redis_server
    deployment.close()
    redis_server.stop()


def _private_redis(**options):
    if shutil.which("redis-server") is None:
        if ci():
            pytest.fail("redis-server is not installed; CI must run this")
        pytest.skip("redis-server not installed: test skipped")
    server = PrivateRedis(**options)
    server.start()
    return server


@pytest.fixture
def private_redis():
    """A redis-server of the test's own, which it may stop, restart or freeze."""
    server = _private_redis()
    yield server
    server.stop()


@pytest.fixture
def private_redis_with_password():
    """A redis-server of the test's own that asks for a password (in its URL)."""
    server = _private_redis(password="layer-test-password")
    yield server
    server.stop()
