import pytest
import pytest_asyncio

from tests.deploy import Deployment
from tests.live import Api
from tests.push.apns_service import ApnsService
from tests.push.fcm_service import FcmService
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


@pytest.fixture(scope="module")
def fcm_service():
    """Google's OAuth token endpoint and FCM ``messages:send`` on loopback."""
    service = FcmService().start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def apns_service(tmp_path_factory):
    """APNs over HTTP/2 and TLS (a test CA) on loopback."""
    service = ApnsService(tmp_path_factory.mktemp("apns")).start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def mobile_deployment(push_service, fcm_service, apns_service, tmp_path_factory):
    """A deployment with Web Push, FCM and APNs credentials for the stand-ins,
    each server process running a task worker."""
    credentials = tmp_path_factory.mktemp("fcm") / "service-account.json"
    credentials.write_text(fcm_service.service_account_json())
    deployment = push_deployment_for(
        push_service,
        FCM_CREDENTIALS_FILE=str(credentials),
        FCM_API_URL=fcm_service.origin,
        **apns_service.env(),
    )
    yield deployment
    deployment.close()


@pytest.fixture(scope="module")
def mobile_server(mobile_deployment):
    return mobile_deployment.start_server("mobile")
