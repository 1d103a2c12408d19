"""One push request to a push service that misbehaves: the whole request has one
deadline, the answer is read to a cap, and the worker goes on to the next push."""

import pytest

from messaging import services as messaging_services
from push import services
from push.models import PushDelivery
from tests.factories import BamFactory, UserFactory
from tests.push.service import Browser, Streamed

pytestmark = pytest.mark.django_db

DEADLINE_S = 1.0

TRICKLE = Streamed(size=40, chunk=1, every_s=0.5)  # 20 s, one byte per 0.5 s
FLOOD = Streamed(size=32 * 2**20, chunk=2**16)  # 32 MiB as fast as it goes


@pytest.fixture
def local_push(settings, push_service):
    settings.PUSH = {
        **settings.PUSH,
        "ALLOWED_HOSTS": [push_service.origin],
        "REQUEST_TIMEOUT_S": DEADLINE_S,
    }


def delivery_to(browser: Browser, user, message) -> PushDelivery:
    subscription, _ = services.subscription_save(
        user=user, endpoint=browser.endpoint, keys=browser.subscription()["keys"]
    )
    return PushDelivery.objects.create(subscription=subscription, message=message)


@pytest.mark.parametrize("answer", [TRICKLE, FLOOD], ids=["trickle", "flood"])
def test_a_misbehaving_service_is_cut_off_and_the_worker_moves_on(
    local_push, push_service, answer
):
    alice, bob, carol = UserFactory(), UserFactory(), UserFactory()
    bam = BamFactory(owner=alice, members=[bob, carol])
    message = messaging_services.message_create(
        bam_id=bam.pk, sender=alice, content="hi"
    )
    slow, fine = Browser(push_service), Browser(push_service)
    push_service.script(slow.path, answer)
    to_bob = delivery_to(slow, bob, message)
    to_carol = delivery_to(fine, carol, message)
    retried = []

    outcome = services.delivery_send(
        delivery_id=to_bob.pk, retry=lambda delivery_id, when: retried.append(when)
    )
    assert outcome == "pending" and len(retried) == 1, "no whole answer: a retry"
    assert PushDelivery.objects.get(pk=to_bob.pk).last_status is None
    push_service.wait_for(
        "the worker closing the connection before the answer's end",
        lambda requests: any(
            r.path == slow.path and r.finished is False for r in requests
        ),
    )
    [request] = push_service.to(slow.path)
    assert request.sent < answer.size

    # The same worker sends the next push, to another user, at once.
    assert services.delivery_send(delivery_id=to_carol.pk, retry=None) == "sent"
    assert fine.delivered_for(str(message.pk)), "Carol's push did not arrive"
