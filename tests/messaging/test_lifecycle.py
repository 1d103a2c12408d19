"""Edit, delete, react, mark read: the services' rules, the events they record,
and the read figures of GET /bams."""

import pytest

from bamchat.errors import Forbidden, Invalid, NotFound
from messaging import lifecycle, services
from messaging.models import Message, MessageEvent, Reaction
from messaging.selectors import bam_events_between
from tests.factories import BamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def trio():
    owner, alice, bob = UserFactory(), UserFactory(), UserFactory()
    return owner, alice, bob, BamFactory(owner=owner, members=[alice, bob])


def say(bam, who, text="hi"):
    return services.message_create(bam_id=bam.pk, sender=who, content=text)


def test_edit_takes_the_next_seq_and_only_the_sender_may(trio):
    owner, alice, _bob, bam = trio
    first = say(bam, alice, "helo")
    with pytest.raises(Forbidden):
        lifecycle.message_edit(message_id=first.pk, user=owner, content="x")
    edited = lifecycle.message_edit(message_id=first.pk, user=alice, content=" hello ")
    assert edited.content == "hello" and edited.edited_at is not None
    event = MessageEvent.objects.get()
    assert (event.kind, event.seq) == ("updated", 2)
    # The same content again changes nothing and takes no seq.
    lifecycle.message_edit(message_id=first.pk, user=alice, content="hello")
    assert MessageEvent.objects.count() == 1
    with pytest.raises(Invalid) as err:
        lifecycle.message_edit(message_id=first.pk, user=alice, content="x" * 4001)
    assert "content" in err.value.fields


def test_outsiders_get_not_found_everywhere(trio):
    _owner, alice, _bob, bam = trio
    message = say(bam, alice)
    stranger = UserFactory()
    for call in (
        lambda: lifecycle.message_edit(
            message_id=message.pk, user=stranger, content="x"
        ),
        lambda: lifecycle.message_delete(message_id=message.pk, user=stranger),
        lambda: lifecycle.reaction_set(
            message_id=message.pk, user=stranger, emoji="👍"
        ),
        lambda: lifecycle.read_mark(
            bam_id=bam.pk, user=stranger, message_id=message.pk
        ),
        lambda: lifecycle.message_edit(message_id="²", user=alice, content="x"),
        lambda: lifecycle.message_edit(
            message_id=message.pk, user=alice, content="x", bam_id=BamFactory().pk
        ),
    ):
        with pytest.raises(NotFound):
            call()
    assert not MessageEvent.objects.exists()


def test_delete_erases_for_good_and_keeps_a_tombstone(trio):
    owner, alice, bob, bam = trio
    message = say(bam, alice, "secret")
    lifecycle.reaction_set(message_id=message.pk, user=bob, emoji="👍")
    with pytest.raises(Forbidden):
        lifecycle.message_delete(message_id=message.pk, user=bob)
    lifecycle.message_delete(message_id=message.pk, user=owner)  # the BAM's owner
    stored = Message.objects.get(pk=message.pk)
    assert stored.content == "" and stored.deleted_at is not None
    assert not Reaction.objects.exists()
    assert not Message.objects.filter(content__contains="secret").exists()
    for call in (
        lambda: lifecycle.message_edit(message_id=message.pk, user=alice, content="x"),
        lambda: lifecycle.reaction_set(message_id=message.pk, user=bob, emoji="👍"),
        lambda: lifecycle.message_delete(message_id=message.pk, user=alice),
    ):
        with pytest.raises(NotFound):
            call()
    names = [name for name, _ in bam_events_between(bam_id=bam.pk, after_seq=0)]
    assert names == ["new-message", "reaction-updated", "message-deleted"]
    _, tombstone = bam_events_between(bam_id=bam.pk, after_seq=0)[0]
    assert tombstone["deleted"] is True and tombstone["content"] is None
    assert tombstone["text"] is None and tombstone["reactions"] == []


@pytest.mark.parametrize(
    "emoji", ["👍", "❤️", "👍🏽", "🇫🇷", "👨‍👩‍👧", "1️⃣", ":thumbs_up:", ":+1:"]
)
def test_emoji_that_are_accepted(trio, emoji):
    _owner, alice, bob, bam = trio
    message = say(bam, alice)
    reactions = lifecycle.reaction_set(message_id=message.pk, user=bob, emoji=emoji)
    assert reactions == [{"emoji": emoji, "count": 1, "userIds": [str(bob.pk)]}]


@pytest.mark.parametrize(
    "emoji",
    ["", "a", "👍👍", "👍 ", ":Thumbs:", "::", "x" * 40, 5, None, "\x00", "\ud83d"],
)
def test_emoji_that_are_refused(trio, emoji):
    _owner, alice, bob, bam = trio
    message = say(bam, alice)
    with pytest.raises(Invalid) as err:
        lifecycle.reaction_set(message_id=message.pk, user=bob, emoji=emoji)
    assert "emoji" in err.value.fields
    assert not MessageEvent.objects.exists()


def test_reactions_count_sort_by_first_use_and_cap_distinct_emoji(trio):
    owner, alice, bob, bam = trio
    message = say(bam, alice)
    lifecycle.reaction_set(message_id=message.pk, user=bob, emoji="🎉")
    lifecycle.reaction_set(message_id=message.pk, user=alice, emoji="👍")
    summary = lifecycle.reaction_set(message_id=message.pk, user=owner, emoji="🎉")
    assert [(r["emoji"], r["count"]) for r in summary] == [("🎉", 2), ("👍", 1)]
    again = lifecycle.reaction_set(message_id=message.pk, user=owner, emoji="🎉")
    assert again == summary and MessageEvent.objects.count() == 3  # no-op, no seq
    removed = lifecycle.reaction_set(
        message_id=message.pk, user=owner, emoji="🎉", on=False
    )
    assert removed[0]["count"] == 1
    last = MessageEvent.objects.order_by("-seq").first()
    assert (last.on, last.count, last.emoji) == (False, 1, "🎉")
    with pytest.raises(Invalid):
        lifecycle.reaction_set(message_id=message.pk, user=bob, emoji="👍", on="yes")
    for n in range(18):
        lifecycle.reaction_set(message_id=message.pk, user=bob, emoji=f":e{n}:")
    with pytest.raises(Invalid):
        lifecycle.reaction_set(message_id=message.pk, user=bob, emoji=":one-more:")
    # An emoji already on the message is still welcome.
    lifecycle.reaction_set(message_id=message.pk, user=owner, emoji=":e0:")


def test_read_position_moves_forward_only(trio):
    owner, alice, bob, bam = trio
    first, second, third = say(bam, alice), say(bam, alice), say(bam, owner)
    result = lifecycle.read_mark(bam_id=bam.pk, user=bob, message_id=second.pk)
    assert result == {
        "bamId": str(bam.pk),
        "messageId": str(second.pk),
        "unreadCount": 1,
    }
    back = lifecycle.read_mark(bam_id=bam.pk, user=bob, message_id=first.pk)
    assert back["messageId"] == str(second.pk) and back["unreadCount"] == 1
    lifecycle.message_delete(message_id=third.pk, user=owner)
    assert (
        lifecycle.read_mark(bam_id=bam.pk, user=bob, message_id=first.pk)["unreadCount"]
        == 0
    ), "a deleted message still counts as unread"


def test_bams_list_unread_figures_for_three_readers(
    rest, trio, django_assert_num_queries
):
    owner, alice, bob, bam = trio
    messages = [say(bam, owner, f"o{i}") for i in range(3)] + [say(bam, alice, "a")]
    lifecycle.read_mark(bam_id=bam.pk, user=alice, message_id=messages[1].pk)
    lifecycle.read_mark(bam_id=bam.pk, user=bob, message_id=messages[3].pk)
    expected = {owner: (1, None), alice: (1, messages[1].pk), bob: (0, messages[3].pk)}
    for user, (unread, read) in expected.items():
        rest.force_authenticate(user)
        item = rest.get("/bams").data["results"][0]
        assert item["unreadCount"] == unread, user
        assert item["lastReadMessageId"] == (None if read is None else str(read))
        assert item["lastMessage"]["id"] == str(messages[3].pk)
    detail = rest.get(f"/bams/{bam.pk}").data
    positions = {p["userId"]: p["messageId"] for p in detail["readPositions"]}
    assert positions[str(alice.pk)] == str(messages[1].pk)
    assert positions[str(owner.pk)] is None

    # The number of queries does not grow with the number of BAMs on the page
    # (the last messages' mentions are one of them).
    rest.force_authenticate(owner)
    with django_assert_num_queries(8) as one:
        rest.get("/bams")
    for n in range(4):
        say(BamFactory(owner=owner, members=[alice]), alice, f"more {n}")
    with django_assert_num_queries(len(one.captured_queries)):
        assert len(rest.get("/bams").data["results"]) == 5
