import json

import pytest
import pytest_asyncio
from django.db import connection
from rest_framework.test import APIClient

from tests.contract import VIOLATIONS, check_response, generated
from tests.deploy import Deployment
from tests.live import Api, Peer


@pytest.fixture(scope="session")
def deployment():
    """One database shared by the live servers of the single-process suite."""
    deployment = Deployment()
    yield deployment
    deployment.close()


@pytest.fixture(scope="session")
def server(deployment):
    """A real daphne process on a loopback port, embedded default (in-memory layer)."""
    return deployment.start_server("daphne")


@pytest_asyncio.fixture
async def api(server):
    client = Api(server.url)
    yield client
    await client.close()


@pytest_asyncio.fixture
async def peers(server):
    """Factory of connected Socket.IO clients; all are closed after the test."""
    made: list[Peer] = []

    async def connect(account=None, *, token=None, transports=None, url=None) -> Peer:
        peer = Peer(
            url or server.url, token if account is None else account.access, transports
        )
        made.append(peer)
        return await peer.connect()

    yield connect
    for peer in made:
        await peer.close()


@pytest.fixture(autouse=True)
def _fresh_audience_caches():
    """Test databases roll back and hand out the same ids again, so one test's
    cached audiences (keyed by BAM id and version) must not reach the next."""
    from messaging import statements
    from push import services as push_services

    yield
    statements._participant_ids_at.cache_clear()
    push_services._push_wanted_at.cache_clear()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """In-process tests hash passwords cheaply; live servers keep the real hasher."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


class CheckedClient(APIClient):
    """DRF test client whose JSON responses are held to the published OpenAPI
    document, like the live clients'."""

    def request(self, **kwargs):
        response = super().request(**kwargs)
        content_type = response.get("Content-Type", "")
        json_body = content_type.startswith("application/json") and response.content
        check_response(
            generated(),
            kwargs["REQUEST_METHOD"],
            kwargs["PATH_INFO"],
            response.status_code,
            content_type,
            json.loads(response.content) if json_body else None,
        )
        return response


@pytest.fixture
def rest():
    """DRF test client against the in-process app (unit tests of the REST layer)."""
    return CheckedClient()


@pytest.fixture(autouse=True)
def _sqlite_only_cases_run_on_sqlite(request):
    """A ``sqlite_only`` case on another database is a mistake of selection."""
    if request.node.get_closest_marker("sqlite_only") and connection.vendor != "sqlite":
        pytest.fail("sqlite_only: deselect it on PostgreSQL (-m 'not sqlite_only')")


@pytest.fixture(autouse=True)
def _payloads_keep_the_contract():
    """Fail a test whose clients received anything the published contracts do
    not describe (``tests.contract``)."""
    VIOLATIONS.clear()
    yield
    found, VIOLATIONS[:] = list(VIOLATIONS), []
    assert not found, "payloads outside the published contract:\n" + "\n".join(found)
