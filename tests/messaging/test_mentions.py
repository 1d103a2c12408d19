"""Mentions: who a text names, how edits change it, and unread mentions per BAM."""

import pytest

from messaging import lifecycle, services
from messaging.mentions import names_in
from messaging.selectors import bam_list_for_user, message_list
from messaging.serializers import message_payload
from tests.factories import BamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def room():
    owner = UserFactory(username="Olga")
    ann, ben = UserFactory(username="Ann.B"), UserFactory(username="ben")
    return owner, ann, ben, BamFactory(owner=owner, members=[ann, ben])


def send(bam, sender, content):
    return services.message_create(bam_id=bam.pk, sender=sender, content=content)


def test_names_are_found_case_insensitively_and_not_in_addresses():
    text = "hi @ANN.B, @Ben. mail x@ben.org (@olga) @ann.b"
    assert names_in(text) == ["ann.b", "ben", "olga"]


def test_participants_named_are_mentioned_and_others_are_not(room):
    owner, ann, _ben, bam = room
    outsider = UserFactory(username="zed")
    message = send(bam, owner, "@ANN.B and @zed and @nobody and @olga")
    assert message_payload(message)["mentions"] == [str(ann.pk)]
    (stored,) = message_list(bam=bam)
    assert message_payload(stored)["mentions"] == [str(ann.pk)]
    assert outsider.pk not in message.mention_ids


def test_all_mentions_everyone_but_the_sender_from_the_owner_only(room):
    owner, ann, ben, bam = room
    assert send(bam, owner, "@all lunch").mention_ids == sorted([ann.pk, ben.pk])
    assert send(bam, ann, "@all lunch").mention_ids == []


def test_an_edit_reports_only_the_newly_named_and_never_twice(room):
    owner, ann, ben, bam = room
    message = send(bam, owner, "hey @ann.b")
    edited = lifecycle.message_edit(
        message_id=message.pk, user=owner, content="hey @ben"
    )
    assert edited.mention_ids == [ben.pk]
    assert list(edited.events.values_list("kind", flat=True)) == ["updated"]
    again = lifecycle.message_edit(
        message_id=message.pk, user=owner, content="hey @ben @ann.b"
    )
    assert again.mention_ids == sorted([ann.pk, ben.pk])
    (stored,) = message_list(bam=bam)
    assert message_payload(stored)["mentions"] == [
        str(u) for u in sorted([ann.pk, ben.pk])
    ]


def test_unread_mentions_count_unread_live_mentions_per_bam(room):
    owner, ann, ben, bam = room
    first = send(bam, owner, "@ann.b one")
    send(bam, owner, "plain")
    gone = send(bam, ben, "@ann.b two")
    send(bam, ben, "@ann.b three")
    lifecycle.message_delete(message_id=gone.pk, user=ben)

    def unread_mentions(user):
        (listed,) = [b for b in bam_list_for_user(user=user) if b.pk == bam.pk]
        return listed.unread_mentions, listed.unread_count

    assert unread_mentions(ann) == (2, 3)
    lifecycle.read_mark(bam_id=bam.pk, user=ann, message_id=first.pk)
    assert unread_mentions(ann) == (1, 2)
    assert unread_mentions(ben) == (0, 2)
