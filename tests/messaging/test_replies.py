"""Replies: ``replyToId`` names a message of the BAM; payloads carry ``replyTo``."""

import pytest

from bamchat.errors import Invalid, NotFound
from messaging import lifecycle, services
from messaging.selectors import bam_events_between, message_list
from messaging.serializers import message_payload
from tests.factories import BamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def room():
    owner, member = UserFactory(), UserFactory()
    return owner, member, BamFactory(owner=owner, members=[member])


def test_a_reply_carries_the_original_with_a_100_character_preview(room):
    owner, member, bam = room
    original = services.message_create(bam_id=bam.pk, sender=owner, content="x" * 150)
    reply = services.message_create(
        bam_id=bam.pk, sender=member, content="yes", reply_to_id=str(original.pk)
    )
    expected = {
        "id": str(original.pk),
        "senderId": str(owner.pk),
        "preview": "x" * 100,
        "deleted": False,
    }
    assert message_payload(reply)["replyTo"] == expected
    (stored,) = [m for m in message_list(bam=bam) if m.pk == reply.pk]
    assert message_payload(stored)["replyTo"] == expected
    assert message_payload(original)["replyTo"] is None


def test_a_deleted_original_shows_deleted_in_history_and_replay(room):
    owner, member, bam = room
    original = services.message_create(bam_id=bam.pk, sender=owner, content="hello")
    reply = services.message_create(
        bam_id=bam.pk, sender=member, content="hi", reply_to_id=original.pk
    )
    lifecycle.message_delete(message_id=original.pk, user=owner)
    gone = {"id": str(original.pk), "senderId": str(owner.pk)}
    gone |= {"preview": None, "deleted": True}
    (history,) = [m for m in message_list(bam=bam) if m.pk == reply.pk]
    assert message_payload(history)["replyTo"] == gone
    replayed = [
        p
        for name, p in bam_events_between(bam_id=bam.pk, after_seq=0)
        if name == "new-message" and p["id"] == str(reply.pk)
    ]
    assert replayed[0]["replyTo"] == gone


@pytest.mark.parametrize("which", ["other_bam", "unknown", "deleted", "garbage"])
def test_reply_to_anything_but_a_live_message_of_the_bam_is_invalid(room, which):
    owner, _member, bam = room
    elsewhere = services.message_create(
        bam_id=BamFactory(owner=owner).pk, sender=owner, content="elsewhere"
    )
    dead = services.message_create(bam_id=bam.pk, sender=owner, content="dead")
    lifecycle.message_delete(message_id=dead.pk, user=owner)
    target = {
        "other_bam": elsewhere.pk,
        "unknown": 999999,
        "deleted": dead.pk,
        "garbage": "abc",
    }[which]
    with pytest.raises(Invalid) as err:
        services.message_create(
            bam_id=bam.pk, sender=owner, content="re", reply_to_id=target
        )
    assert "replyToId" in err.value.fields
    assert bam.messages.count() == 1  # the refusal stored nothing


def test_an_outsider_gets_not_found_before_the_reply_is_checked(room):
    owner, _member, bam = room
    original = services.message_create(bam_id=bam.pk, sender=owner, content="a")
    with pytest.raises(NotFound):
        services.message_create(
            bam_id=bam.pk, sender=UserFactory(), content="b", reply_to_id=original.pk
        )
