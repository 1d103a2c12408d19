"""Model writes reach the bus once, after commit, never on rollback."""

import pytest
from django.db import transaction

from messaging import services
from tests.factories import BamFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sent(monkeypatch):
    """Every envelope handed to the bus, in order."""
    got: list[tuple[str, dict]] = []
    monkeypatch.setattr(
        "realtime.bus.bus.send", lambda group, message: got.append((group, message))
    )
    return got


@pytest.fixture
def bam():
    owner, member = UserFactory(), UserFactory()
    return BamFactory(owner=owner, members=[member])


def kinds(sent) -> list[str]:
    return [message["type"] for _, message in sent]


def test_new_message_leaves_once_and_only_after_commit(sent, bam):
    owner = bam.owner
    with transaction.atomic():
        message = services.message_create(
            bam_id=bam.pk, sender=owner, content="hello", temp_id="a"
        )
        assert sent == [], "an event left before the transaction committed"
    assert kinds(sent) == ["realtime.bam_event", "realtime.users_event"]
    group, event = sent[0]
    assert group == f"bam-{bam.pk}" and event["event"] == "new-message"
    payload = event["data"]
    assert payload["id"] == str(message.pk) and payload["bamId"] == str(bam.pk)
    assert payload["seq"] == 1 and payload["content"] == payload["text"] == "hello"
    assert payload["sender"] == {"id": str(owner.pk), "username": owner.username}
    assert (payload["tempId"], payload["toUserId"], payload["type"]) == (
        "a",
        None,
        "text",
    )
    assert payload["createdAt"].endswith("Z") and payload["editedAt"] is None
    assert (payload["deleted"], payload["attachments"], payload["reactions"]) == (
        False,
        [],
        [],
    )
    notification = sent[1][1]
    assert notification["event"] == "notification"
    assert notification["except_bam"] == bam.pk
    assert owner.pk not in notification["users"]

    services.message_create(bam_id=bam.pk, sender=owner, content="hello", temp_id="a")
    assert len(sent) == 2, "a repeated tempId announced a second message"


def test_rolled_back_write_announces_nothing(sent, bam):
    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        services.message_create(bam_id=bam.pk, sender=bam.owner, content="never")
        raise Boom
    assert sent == []
    bam.refresh_from_db()
    assert bam.last_seq == 0


def test_removal_and_deletion_revoke_access_on_every_process(sent, bam):
    member = bam.memberships.exclude(user=bam.owner).get().user
    services.participant_remove(
        bam_id=bam.pk, user=bam.owner, removed_user_id=member.pk
    )
    assert sent[-1][1] == {
        "type": "realtime.bam_access_revoked",
        "bam": bam.pk,
        "users": [member.pk],
    }
    sent.clear()
    services.bam_delete(bam_id=bam.pk, user=bam.owner)
    assert kinds(sent) == ["realtime.bam_access_revoked"]
    assert sent[0][1]["users"] == [bam.owner.pk]


def test_deactivated_and_deleted_users_are_disconnected_everywhere(sent, bam):
    user = bam.owner
    user.first_name = "unchanged access"
    user.save()
    assert sent == [], "an ordinary profile save disconnected the user"
    user.is_active = False
    user.save()
    assert sent[-1][1] == {"type": "realtime.users_disconnect", "users": [user.pk]}
    sent.clear()
    user_id = user.pk
    user.delete()
    assert {"type": "realtime.users_disconnect", "users": [user_id]} in [
        m for _, m in sent
    ]
