"""new-message goes onto the channel layer once, after commit, never on rollback."""

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from messaging import services
from tests.factories import BamFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _drain(layer, channel) -> list[dict]:
    """Everything queued on the channel now (the in-memory layer is synchronous)."""

    async def take():
        got = []
        while True:
            try:
                got.append(await asyncio.wait_for(layer.receive(channel), 0.05))
            except TimeoutError:
                return got

    return async_to_sync(take)()


@pytest.fixture
def listening():
    owner, member = UserFactory(), UserFactory()
    bam = BamFactory(owner=owner, members=[member])
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(f"bam-{bam.pk}", channel)
    yield owner, bam, layer, channel
    async_to_sync(layer.group_discard)(f"bam-{bam.pk}", channel)


def test_event_arrives_once_and_only_after_commit(listening):
    owner, bam, layer, channel = listening
    with transaction.atomic():
        message = services.message_create(
            bam_id=bam.pk, sender=owner, content="hello", temp_id="a"
        )
        assert _drain(layer, channel) == [], (
            "event left before the transaction committed"
        )
    events = _drain(layer, channel)
    assert len(events) == 1
    event = events[0]
    assert event["event"] == "new-message" and event["room"] == f"bam-{bam.pk}"
    payload = event["data"][0]
    assert payload["id"] == str(message.pk) and payload["bamId"] == str(bam.pk)
    assert payload["content"] == payload["text"] == "hello"
    assert payload["sender"] == {"id": str(owner.pk), "username": owner.username}
    assert (
        payload["tempId"] == "a"
        and payload["toUserId"] is None
        and payload["type"] == "text"
    )
    assert payload["createdAt"].endswith("Z")

    services.message_create(bam_id=bam.pk, sender=owner, content="hello", temp_id="a")
    assert _drain(layer, channel) == [], "a repeated tempId announced a second message"


def test_rolled_back_write_announces_nothing(listening):
    owner, bam, layer, channel = listening

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        services.message_create(bam_id=bam.pk, sender=owner, content="never")
        raise Boom
    assert _drain(layer, channel) == []
    bam.refresh_from_db()
    assert bam.last_seq == 0
