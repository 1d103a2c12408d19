import pytest

from bamchat.errors import Forbidden, Invalid, NotFound
from messaging import services
from messaging.models import Bam, Membership, Message
from tests.factories import BamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def pair():
    owner, member = UserFactory(), UserFactory()
    return owner, member, BamFactory(owner=owner, members=[member])


def test_bam_create_makes_owner_a_participant():
    owner, other = UserFactory(), UserFactory()
    bam = services.bam_create(
        owner=owner, title="  Hello  ", participant_ids=[str(other.pk), other.pk]
    )
    assert bam.title == "Hello"
    roles = dict(Membership.objects.filter(bam=bam).values_list("user_id", "role"))
    assert roles == {owner.pk: "owner", other.pk: "member"}


@pytest.mark.parametrize("ids", [["nope"], [999999], "1", [True]])
def test_bam_create_rejects_bad_participants_and_writes_nothing(ids):
    with pytest.raises(Invalid) as err:
        services.bam_create(owner=UserFactory(), title="x", participant_ids=ids)
    assert "participantIds" in err.value.fields
    assert not Bam.objects.exists()


def test_message_sequence_is_per_bam_and_increasing(pair):
    owner, member, bam = pair
    other = BamFactory(owner=owner)
    seqs = [
        services.message_create(bam_id=bam.pk, sender=owner, content=f"m{i}").seq
        for i in range(3)
    ]
    assert seqs == [1, 2, 3]
    assert services.message_create(bam_id=other.pk, sender=owner, content="x").seq == 1
    assert (
        services.message_create(bam_id=str(bam.pk), sender=member, content="y").seq == 4
    )


def test_same_sender_and_temp_id_is_one_message(pair):
    owner, member, bam = pair
    first = services.message_create(
        bam_id=bam.pk, sender=owner, content="hi", temp_id="t-1"
    )
    again = services.message_create(
        bam_id=bam.pk, sender=owner, content="hi again", temp_id="t-1"
    )
    assert first.created and not again.created
    assert again.pk == first.pk and again.content == "hi"
    other = services.message_create(
        bam_id=bam.pk, sender=member, content="mine", temp_id="t-1"
    )
    assert other.pk != first.pk
    assert Message.objects.count() == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"content": "   "}, "content"),
        ({"content": ""}, "content"),
        ({"content": None}, "content"),
        ({"content": 12}, "content"),
        ({"content": "x" * 4001}, "content"),
        ({"content": "ok", "type": "video"}, "type"),
        ({"content": "ok", "type": 3}, "type"),
        ({"content": "ok", "temp_id": ["a"]}, "tempId"),
        ({"content": "ok", "temp_id": "t" * 101}, "tempId"),
        ({"content": "ok", "to_user_id": "abc"}, "toUserId"),
    ],
)
def test_bad_input_is_invalid_and_writes_nothing(pair, kwargs, field):
    owner, _, bam = pair
    with pytest.raises(Invalid) as err:
        services.message_create(bam_id=bam.pk, sender=owner, **kwargs)
    assert field in err.value.fields
    assert not Message.objects.exists()
    bam.refresh_from_db()
    assert bam.last_seq == 0


def test_content_is_trimmed_and_4000_characters_fit(pair):
    owner, _, bam = pair
    message = services.message_create(
        bam_id=bam.pk, sender=owner, content="  " + "x" * 4000 + "\n"
    )
    assert message.content == "x" * 4000


def test_recipient_must_be_a_participant(pair):
    owner, member, bam = pair
    outsider = UserFactory()
    with pytest.raises(Invalid) as err:
        services.message_create(
            bam_id=bam.pk, sender=owner, content="hi", to_user_id=outsider.pk
        )
    assert "toUserId" in err.value.fields
    message = services.message_create(
        bam_id=bam.pk, sender=owner, content="hi", to_user_id=str(member.pk)
    )
    assert message.to_user_id == member.pk


@pytest.mark.parametrize("bam_id", ["abc", None, -1, "1.5", [], 10**30])
def test_outsider_and_malformed_ids_are_not_found(pair, bam_id):
    owner, _, bam = pair
    with pytest.raises(NotFound):
        services.message_create(bam_id=bam_id, sender=owner, content="hi")
    with pytest.raises(NotFound):
        services.message_create(bam_id=bam.pk, sender=UserFactory(), content="hi")
    assert not Message.objects.exists()


def test_membership_rules(pair):
    owner, member, bam = pair
    newcomer = UserFactory()
    with pytest.raises(Forbidden):
        services.participant_add(bam_id=bam.pk, user=member, new_user_ids=[newcomer.pk])
    services.participant_add(
        bam_id=bam.pk, user=owner, new_user_ids=[newcomer.pk, member.pk]
    )
    assert set(bam.memberships.values_list("user_id", flat=True)) == {
        owner.pk,
        member.pk,
        newcomer.pk,
    }
    with pytest.raises(Forbidden):
        services.participant_remove(
            bam_id=bam.pk, user=member, removed_user_id=newcomer.pk
        )
    services.participant_remove(
        bam_id=bam.pk, user=member, removed_user_id=member.pk
    )  # leaving
    with pytest.raises(NotFound):
        services.participant_remove(
            bam_id=bam.pk, user=member, removed_user_id=member.pk
        )
    with pytest.raises(Forbidden):
        services.participant_remove(bam_id=bam.pk, user=owner, removed_user_id=owner.pk)
    with pytest.raises(Forbidden):
        services.bam_rename(bam_id=bam.pk, user=newcomer, title="mine")
    services.bam_delete(bam_id=bam.pk, user=owner)
    assert not Bam.objects.exists()


def test_temp_id_is_matched_only_after_access_and_only_in_the_same_bam(pair):
    _owner, member, bam = pair
    first = services.message_create(
        bam_id=bam.pk, sender=member, content="in X", temp_id="t-9"
    )
    other = BamFactory(owner=UserFactory(), members=[member])
    again = services.message_create(
        bam_id=other.pk, sender=member, content="in Z", temp_id="t-9"
    )
    assert again.created and again.pk != first.pk and again.bam_id == other.pk
    services.participant_remove(bam_id=bam.pk, user=member, removed_user_id=member.pk)
    with pytest.raises(NotFound):
        services.message_create(
            bam_id=bam.pk, sender=member, content="replay", temp_id="t-9"
        )
    with pytest.raises(NotFound):
        services.message_create(
            bam_id=99999999, sender=member, content="nowhere", temp_id="t-9"
        )
    assert Message.objects.count() == 2


def test_system_messages_come_only_from_staff(pair):
    owner, member, bam = pair
    for user in (owner, member):
        with pytest.raises(Forbidden):
            services.message_create(
                bam_id=bam.pk, sender=user, content="fake notice", type="system"
            )
    assert not Message.objects.exists()
    staff = UserFactory(is_staff=True)
    services.participant_add(bam_id=bam.pk, user=owner, new_user_ids=[staff.pk])
    notice = services.message_create(
        bam_id=bam.pk, sender=staff, content="maintenance at noon", type="system"
    )
    assert notice.type == "system"


def test_system_message_check_reads_staff_status_from_the_database(pair):
    owner, _, bam = pair
    staff = UserFactory(is_staff=True)
    services.participant_add(bam_id=bam.pk, user=owner, new_user_ids=[staff.pk])
    bare = type(staff)(pk=staff.pk, username=staff.username)  # as realtime passes it
    notice = services.message_create(
        bam_id=bam.pk, sender=bare, content="notice", type="system"
    )
    assert notice.type == "system"
    forged = type(owner)(pk=owner.pk, username=owner.username, is_staff=True)
    with pytest.raises(Forbidden):
        services.message_create(
            bam_id=bam.pk, sender=forged, content="fake", type="system"
        )


@pytest.mark.parametrize(
    "raw", ["\u00b2", "\u2460", "\u0661\u0662", "\uff11", " \u00b2 ", "1\u00b2"]
)
def test_non_ascii_digits_are_not_ids(raw):
    from messaging.selectors import parse_id

    with pytest.raises(NotFound):
        parse_id(raw)
    assert parse_id(" 12 ") == 12


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"content": "a\ud800b"}, "content"),
        ({"content": "a\x00b"}, "content"),
        ({"content": "ok", "temp_id": "\udfff"}, "tempId"),
        ({"content": "ok", "temp_id": "t\x00"}, "tempId"),
        ({"content": "ok", "to_user_id": "²"}, "toUserId"),
    ],
)
def test_unstorable_text_is_invalid_and_writes_nothing(pair, kwargs, field):
    owner, _, bam = pair
    with pytest.raises(Invalid) as err:
        services.message_create(bam_id=bam.pk, sender=owner, **kwargs)
    assert field in err.value.fields
    assert not Message.objects.exists()


@pytest.mark.parametrize("title", ["a\ud800", "a\x00b"])
def test_unstorable_titles_are_invalid(pair, title):
    owner, _, bam = pair
    with pytest.raises(Invalid):
        services.bam_create(owner=owner, title=title)
    with pytest.raises(Invalid):
        services.bam_rename(bam_id=bam.pk, user=owner, title=title)
    assert Bam.objects.count() == 1


def test_non_ascii_digit_participant_ids_are_invalid():
    with pytest.raises(Invalid):
        services.bam_create(owner=UserFactory(), title="x", participant_ids=["²"])
    assert not Bam.objects.exists()
