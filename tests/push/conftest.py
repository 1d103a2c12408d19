import pytest
import pytest_asyncio

from tests.live import Api, Deployment
from tests.push.service import PushService

PUSH_TTL_S = 3600
PUSH_SUBJECT = "mailto:push-tests@example.com"
PUSH_MAX_DEVICES = 6  # small, so a test can go past it quickly


@pytest.fixture
def push_hosts(settings):
    """In-process tests: the allow-list of a host, a wildcard and a local origin."""
    settings.PUSH = {
        **settings.PUSH,
        "ALLOWED_HOSTS": [
            "fcm.googleapis.com",
            "*.notify.windows.com",
            "http://127.0.0.1:9123",
        ],
    }


@pytest.fixture(scope="module")
def push_service():
    """A local push service the deployment may reach (allowed as an origin)."""
    service = PushService().start()
    yield service
    service.stop()


def push_deployment_for(service: PushService, **extra: str) -> Deployment:
    """A deployment whose pushes may go only to the local push service."""
    return Deployment(
        **{
            "PUSH_ALLOWED_HOSTS": (
                f"fcm.googleapis.com,*.notify.windows.com,{service.origin}"
            ),
            "PUSH_TTL_S": str(PUSH_TTL_S),
            "PUSH_VAPID_SUBJECT": PUSH_SUBJECT,
            "PUSH_MAX_DEVICES_PER_USER": str(PUSH_MAX_DEVICES),
            "TASKS_IN_PROCESS_WORKER": "1",
            "TASKS_WORKER_INTERVAL_S": "0.1",
            **extra,
        }
    )


@pytest.fixture(scope="module")
def push_deployment(push_service):
    """The module's deployment, each server process running a task worker."""
    deployment = push_deployment_for(push_service)
    yield deployment
    deployment.close()


@pytest.fixture(scope="module")
def push_server(push_deployment):
    return push_deployment.start_server("push")


@pytest_asyncio.fixture
async def push_api(push_server):
    client = Api(push_server.url)
    yield client
    await client.close()
