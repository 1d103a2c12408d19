"""The message hot path's SQL statements and group commit, against the ORM.

Each statement in ``messaging.statements`` (and push's ``push_wanted``) stands
for an ORM query; these tests compare their results on the same rows, on
SQLite and, in CI's third step, on PostgreSQL.
"""

import pytest
from django.db import DataError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bamchat.errors import Forbidden, NotFound
from messaging import lifecycle, services, statements
from messaging.drafts import message_draft
from messaging.models import Bam, Membership, Message
from messaging.serializers import message_payload
from push import services as push_services
from push.models import PushDevice, PushSubscription
from push.services import push_wanted
from tests.factories import BamFactory, UserFactory
from tests.push.test_services import KEYS

pytestmark = pytest.mark.django_db


@pytest.fixture
def room():
    owner, a, b = UserFactory(), UserFactory(), UserFactory()
    return owner, a, b, BamFactory(owner=owner, members=[a, b])


def draft(bam, sender, content="hi", **extra):
    return message_draft(bam_id=bam.pk, sender=sender, content=content, **extra)


def test_stored_message_reads_back_equal_through_the_orm(room):
    _owner, a, _, bam = room
    stored = services.message_create(
        bam_id=bam.pk, sender=a, content=" héllo 👋 ", temp_id="t-9"
    )
    from_orm = Message.objects.select_related("sender").get(pk=stored.pk)
    assert message_payload(stored) == message_payload(from_orm)
    assert (from_orm.seq, from_orm.content, from_orm.temp_id) == (1, "héllo 👋", "t-9")
    bam.refresh_from_db()
    assert bam.last_seq == 1
    assert abs(bam.updated_at - from_orm.created_at) < timezone.timedelta(seconds=1)


def test_seq_take_matches_the_orm_membership_check(room):
    owner, a, _, bam = room
    outsider = UserFactory()
    for user in (owner, a, outsider):
        is_member = Bam.objects.filter(pk=bam.pk, memberships__user=user).exists()
        taken = statements.seq_take(bam_id=bam.pk, user_id=user.pk, now=timezone.now())
        assert (taken is not None) == is_member
    bam.refresh_from_db()
    assert bam.last_seq == 2  # owner and a took one each; the outsider none
    statements.seq_give_back(bam_id=bam.pk)
    bam.refresh_from_db()
    assert bam.last_seq == 1


def test_participant_ids_match_the_orm(room):
    _owner, a, _b, bam = room
    BamFactory(owner=a, members=[UserFactory()])  # another BAM's members stay out
    orm = Membership.objects.filter(bam=bam).values_list("user_id", flat=True)
    assert sorted(statements.participant_ids(bam_id=bam.pk)) == sorted(orm)


def _push_wanted_orm(bam, sender) -> bool:
    return any(
        model.objects.filter(user__memberships__bam=bam, user__memberships__muted=False)
        .exclude(user=sender)
        .exists()
        for model in (PushSubscription, PushDevice)
    )


def test_push_wanted_matches_the_orm_query(room):
    owner, a, _b, bam = room

    def both():
        return (
            push_wanted(bam_id=bam.pk, sender_id=owner.pk),
            _push_wanted_orm(bam, owner),
        )

    assert both() == (False, False)
    PushSubscription.objects.create(
        user=owner, endpoint="https://push.example/o", p256dh="k", auth="a"
    )
    assert both() == (False, False)  # only the sender has a device
    PushSubscription.objects.create(
        user=a, endpoint="https://push.example/a", p256dh="k", auth="a"
    )
    assert both() == (True, True)
    Membership.objects.filter(bam=bam, user=a).update(muted=True)
    assert both() == (False, False)
    other = BamFactory(owner=a, members=[owner])  # a's device, another BAM
    assert push_wanted(bam_id=other.pk, sender_id=owner.pk) is True
    # An app device counts as a browser does.
    Membership.objects.filter(bam=bam, user=a).update(muted=False)
    PushSubscription.objects.filter(user=a).delete()
    assert both() == (False, False)
    PushDevice.objects.create(user=_b, platform="fcm", token="t0k3n")
    assert both() == (True, True)


def test_a_plain_message_costs_four_statements_then_two(
    room, django_capture_on_commit_callbacks
):
    """seq (with the access check), insert, then after commit the participants
    for notifications and the push check: no ORM lookups of the BAM, the
    tempId or the message's reactions. Until the audience changes, the next
    messages of the BAM take the last two from this process's cache."""
    _owner, a, _, bam = room

    def statements_of_one_message(n: int) -> list[str]:
        with CaptureQueriesContext(connection) as queries:
            with django_capture_on_commit_callbacks(execute=True):
                services.message_create(
                    bam_id=bam.pk, sender=a, content="x", temp_id=f"t{n}"
                )
        return [
            q["sql"]
            for q in queries.captured_queries
            if not q["sql"].upper().startswith(("SAVEPOINT", "RELEASE", "BEGIN"))
        ]

    # The seq and the insert are one statement on PostgreSQL (a CTE).
    write = 1 if connection.vendor == "postgresql" else 2
    assert len(statements_of_one_message(1)) == write + 2
    assert len(statements_of_one_message(2)) == write
    services.participant_add(
        bam_id=bam.pk, user=_owner, new_user_ids=[UserFactory().pk]
    )
    assert len(statements_of_one_message(3)) == write + 2


def test_a_batch_keeps_order_seqs_and_refusals_apart(room):
    owner, a, b, bam = room
    other = BamFactory(owner=b)
    outsider = UserFactory()
    drafts = [
        draft(bam, a, "one"),
        draft(other, b, "elsewhere"),
        draft(bam, outsider, "refused"),
        draft(bam, b, "two", temp_id="t"),
        draft(bam, b, "two again", temp_id="t"),
        draft(bam, a, "system", type="system"),
        draft(bam, owner, "three"),
    ]
    results = services.messages_create(drafts)
    assert isinstance(results[2], NotFound)
    assert isinstance(results[5], Forbidden)
    stored = [r for r in results if isinstance(r, Message)]
    assert [m.content for m in stored] == [
        "one",
        "elsewhere",
        "two",
        "two",
        "three",
    ]
    assert results[4].pk == results[3].pk and results[4].created is False
    # Seqs of a BAM follow the order given, with no gap for refusals or repeats.
    assert [r.seq for r in (results[0], results[3], results[6])] == [1, 2, 3]
    assert results[1].seq == 1
    bam.refresh_from_db()
    assert bam.last_seq == 3
    assert Message.objects.filter(bam=bam).count() == 3


def _written(queries) -> list[str]:
    return [
        q["sql"]
        for q in queries.captured_queries
        if not q["sql"].upper().startswith(("SAVEPOINT", "RELEASE", "BEGIN"))
    ]


def test_a_batch_of_plain_messages_costs_the_same_statements_whatever_its_size(
    room,
):
    """Seqs of every BAM in one UPDATE, rows in one INSERT that checks
    membership (PostgreSQL first locks the BAMs in id order): a busy process
    pays per batch, not per message."""
    owner, a, b, bam = room
    other = BamFactory(owner=b, members=[a])

    def statements_of_a_batch(n: int) -> list[str]:
        senders = [(bam, a), (other, b), (bam, owner), (other, a)]
        drafts = [
            draft(*senders[i % len(senders)], f"m{i}", temp_id=f"{n}-{i}")
            for i in range(n)
        ]
        with CaptureQueriesContext(connection) as queries:
            results = services.messages_create(drafts)
        assert all(isinstance(r, Message) for r in results), results
        return _written(queries)

    statements_of_a_batch(4)  # the audiences are cached from here on
    assert len(statements_of_a_batch(2)) == len(statements_of_a_batch(40)) <= 3


def test_a_plain_batch_takes_each_bams_seqs_in_the_order_given(room):
    owner, a, b, bam = room
    other = BamFactory(owner=b, members=[a])
    services.message_create(bam_id=bam.pk, sender=a, content="first")
    drafts = [
        draft(bam, a, "one", temp_id="x"),
        draft(other, b, "elsewhere"),
        draft(bam, owner, "two"),
        draft(other, a, "elsewhere too", temp_id="x"),
        draft(bam, b, "three", temp_id="x"),
    ]
    results = services.messages_create(drafts)
    assert [(r.bam_id, r.seq, r.content) for r in results] == [
        (bam.pk, 2, "one"),
        (other.pk, 1, "elsewhere"),
        (bam.pk, 3, "two"),
        (other.pk, 2, "elsewhere too"),
        (bam.pk, 4, "three"),
    ]
    for result in results:
        from_orm = Message.objects.select_related("sender").get(pk=result.pk)
        assert message_payload(result) == message_payload(from_orm)
        assert result.created is True
    assert Bam.objects.get(pk=bam.pk).last_seq == 4
    assert Bam.objects.get(pk=other.pk).last_seq == 2


@pytest.mark.parametrize("odd_one", ["outsider", "stored tempId", "tempId twice"])
def test_a_plain_batch_with_an_odd_message_is_stored_one_by_one(room, odd_one):
    """An outsider or a repeated tempId undoes the batch's statements; each
    message is then stored on its own, so nothing leaves a gap in the seqs."""
    owner, a, b, bam = room
    earlier = services.message_create(
        bam_id=bam.pk, sender=b, content="earlier", temp_id="t"
    )
    odd = {
        "outsider": draft(bam, UserFactory(), "refused"),
        "stored tempId": draft(bam, b, "again", temp_id="t"),
        "tempId twice": draft(bam, a, "one again", temp_id="a1"),
    }[odd_one]
    drafts = [draft(bam, a, "one", temp_id="a1"), odd, draft(bam, owner, "two")]
    results = services.messages_create(drafts)
    assert [r.seq for r in (results[0], results[2])] == [2, 3]
    if odd_one == "outsider":
        assert isinstance(results[1], NotFound)
    else:
        repeated = results[0] if odd_one == "tempId twice" else earlier
        assert (results[1].pk, results[1].created) == (repeated.pk, False)
    assert list(Message.objects.order_by("seq").values_list("seq", flat=True)) == [
        1,
        2,
        3,
    ]


def test_a_failing_batch_is_stored_one_by_one(room, monkeypatch):
    """A database error in one message of a batch fails only that message."""
    owner, a, _, bam = room
    real = statements.message_insert_with_seq

    def insert(message, **kwargs):
        if message.content == "poison":
            raise DataError("value rejected by the database")
        return real(message, **kwargs)

    def insert_batch(messages, **kwargs):
        if any(message.content == "poison" for message in messages):
            raise DataError("value rejected by the database")
        raise AssertionError("the batch holds the poison")

    monkeypatch.setattr(statements, "message_insert_with_seq", insert)
    monkeypatch.setattr(statements, "messages_insert", insert_batch)
    results = services.messages_create(
        [draft(bam, a, "before"), draft(bam, a, "poison"), draft(bam, owner, "after")]
    )
    assert [type(r).__name__ for r in results] == ["Message", "DataError", "Message"]
    assert list(Message.objects.values_list("content", "seq")) == [
        ("before", 1),
        ("after", 2),
    ]


def test_last_seq_for_participant_matches_the_orm(room):
    owner, a, _, bam = room
    services.message_create(bam_id=bam.pk, sender=a, content="one")
    outsider = UserFactory()
    for user in (owner, a, outsider):
        orm = (
            Bam.objects.filter(pk=bam.pk, memberships__user=user)
            .values_list("last_seq", flat=True)
            .first()
        )
        assert (
            statements.last_seq_for_participant(bam_id=bam.pk, user_id=user.pk) == orm
        )
    assert statements.last_seq_for_participant(bam_id=bam.pk, user_id=a.pk) == 1


def test_last_seqs_for_many_participants_match_one_by_one(room):
    owner, a, b, bam = room
    other = BamFactory(owner=b, members=[owner])
    services.message_create(bam_id=other.pk, sender=b, content="x")
    outsider = UserFactory()
    pairs = [
        (bam.pk, owner.pk),
        (other.pk, a.pk),  # a is not in the other BAM (b's and owner's are)
        (other.pk, owner.pk),
        (bam.pk, outsider.pk),
        (10**9, a.pk),  # no such BAM
        (bam.pk, a.pk),
    ]
    with CaptureQueriesContext(connection) as queries:
        many = statements.last_seqs_for_participants(pairs=pairs)
    assert len(queries) == 1
    assert many == [
        statements.last_seq_for_participant(bam_id=b_id, user_id=u_id)
        for b_id, u_id in pairs
    ]
    assert many[1] is None and many[2] == 1


def test_co_participants_of_match_the_orm(room):
    owner, a, b, _bam = room
    elsewhere = UserFactory()
    BamFactory(owner=a, members=[elsewhere])
    BamFactory(owner=UserFactory(), members=[UserFactory()])  # unrelated
    lonely = UserFactory()
    users = (owner, a, b, elsewhere, lonely)
    expected = {}
    for user in users:
        mine = Membership.objects.filter(user=user).values("bam_id")
        orm = set(
            Membership.objects.filter(bam_id__in=mine).values_list("user_id", flat=True)
        ) | {user.pk}
        expected[user.pk] = sorted(orm)
    assert statements.co_participants_of(user_ids=[u.pk for u in users]) == expected
    assert statements.co_participants_of(user_ids=[lonely.pk]) == {
        lonely.pk: [lonely.pk]
    }
    assert statements.co_participants_of(user_ids=[]) == {}
    # A storm's worth of users: the IN lists are split, and the answer is the same
    # (ids of no account hear only of themselves).
    size = statements.IN_LIST_SIZE
    unknown = range(10**9, 10**9 + 2 * size)
    with CaptureQueriesContext(connection) as queries:
        many = statements.co_participants_of(user_ids=[*expected, *unknown])
    assert many == expected | {u: [u] for u in unknown}
    assert len(queries) == 3


def _version(bam) -> int:
    return Bam.objects.values_list("audience_version", flat=True).get(pk=bam.pk)


def test_audience_version_moves_with_whoever_hears_of_the_bam(room):
    """Every change of the audience bumps the version the writes read, so the
    cached participants and push answer are never those of before the change."""
    owner, a, b, bam = room
    first = services.message_create(bam_id=bam.pk, sender=a, content="one")
    assert first.audience_version == _version(bam)
    assert set(
        statements.participant_ids(bam_id=bam.pk, audience_version=_version(bam))
    ) == {owner.pk, a.pk, b.pk}
    assert not push_wanted(
        bam_id=bam.pk, sender_id=a.pk, audience_version=_version(bam)
    )

    steps = []
    newcomer = UserFactory()
    services.participant_add(bam_id=bam.pk, user=owner, new_user_ids=[newcomer.pk])
    steps.append(_version(bam))
    services.participant_remove(bam_id=bam.pk, user=b, removed_user_id=b.pk)
    steps.append(_version(bam))
    device = push_services.subscription_save(
        user=newcomer,
        endpoint="https://fcm.googleapis.com/fcm/send/audience-test",
        keys=KEYS,
    )[0]
    steps.append(_version(bam))
    push_services.membership_mute_set(bam_id=bam.pk, user=newcomer, muted=True)
    steps.append(_version(bam))
    assert steps == sorted(set(steps)) and steps[0] > first.audience_version

    second = services.message_create(bam_id=bam.pk, sender=a, content="two")
    assert second.audience_version == steps[-1]
    assert set(
        statements.participant_ids(bam_id=bam.pk, audience_version=steps[-1])
    ) == {owner.pk, a.pk, newcomer.pk}
    assert not push_wanted(bam_id=bam.pk, sender_id=a.pk, audience_version=steps[-1])
    push_services.membership_mute_set(bam_id=bam.pk, user=newcomer, muted=False)
    assert push_wanted(bam_id=bam.pk, sender_id=a.pk, audience_version=_version(bam))
    before = _version(bam)
    push_services.subscription_delete(user=newcomer, subscription_id=device.pk)
    assert _version(bam) > before
    assert not push_wanted(
        bam_id=bam.pk, sender_id=a.pk, audience_version=_version(bam)
    )


def test_reading_does_not_move_the_audience_version(room):
    owner, a, _, bam = room
    message = services.message_create(bam_id=bam.pk, sender=owner, content="x")
    before = _version(bam)
    lifecycle.read_mark(bam_id=bam.pk, user=a, message_id=message.pk)
    assert _version(bam) == before


def test_a_reply_stored_by_the_statements_reads_back_equal(room):
    owner, a, _, bam = room
    original = services.message_create(bam_id=bam.pk, sender=owner, content="q")
    reply = services.message_create(
        bam_id=bam.pk, sender=a, content="a", reply_to_id=original.pk
    )
    from_orm = Message.objects.select_related("sender", "reply_to").get(pk=reply.pk)
    assert from_orm.reply_to_id == original.pk
    assert message_payload(reply) == message_payload(from_orm)
