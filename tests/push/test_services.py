"""Push rules in-process: the plan of a message, the claim, what is not sent."""

import uuid

import pytest
from prometheus_client import REGISTRY

from messaging import lifecycle
from messaging import services as messaging_services
from push import services, webpush
from push.models import PushDelivery, PushDevice, PushSubscription
from push.senders import Outcome, Result
from push.webpush import PushAnswer, retry_after_seconds
from tests.factories import BamFactory, UserFactory

KEYS = {
    "p256dh": (
        "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1Xbjha"
        "zAkj7I99e8QcYP7DkM"
    ),
    "auth": "tBHItJI5svbpez7KI4CCXg",
}


@pytest.mark.django_db
def test_plan_skips_sender_muted_and_connected_users(push_hosts, monkeypatch):
    alice, bob, carol, dave = UserFactory(), UserFactory(), UserFactory(), UserFactory()
    bam = BamFactory(owner=alice, members=[bob, carol, dave])
    for n, user in enumerate((alice, bob, carol, dave)):
        services.subscription_save(
            user=user, endpoint=f"https://fcm.googleapis.com/fcm/send/{n}", keys=KEYS
        )
    services.membership_mute_set(bam_id=bam.pk, user=carol, muted=True)
    monkeypatch.setattr(
        services, "user_socket_count", lambda *, user_id: int(user_id == dave.pk)
    )
    message = messaging_services.message_create(
        bam_id=bam.pk, sender=alice, content="hi"
    )
    planned = services.deliveries_plan(message_id=message.pk)
    assert [PushDelivery.objects.get(pk=p).subscription.user for p in planned] == [bob]
    # Planned again (a second worker, a repeated task): nothing new.
    assert services.deliveries_plan(message_id=message.pk) == planned
    assert PushDelivery.objects.count() == 1


@pytest.mark.django_db
def test_a_delivery_is_claimed_and_sent_once(push_hosts, monkeypatch):
    alice, bob = UserFactory(), UserFactory()
    bam = BamFactory(owner=alice, members=[bob])
    services.subscription_save(
        user=bob, endpoint="https://fcm.googleapis.com/fcm/send/b", keys=KEYS
    )
    monkeypatch.setattr(services, "user_socket_count", lambda *, user_id: 0)
    message = messaging_services.message_create(
        bam_id=bam.pk, sender=alice, content="hi"
    )
    [delivery_id] = services.deliveries_plan(message_id=message.pk)
    sent = []

    def fake_send(**kwargs):
        sent.append(kwargs)
        # A second worker racing for the same delivery finds it taken.
        assert services.delivery_claim(delivery_id=delivery_id) is False
        return PushAnswer(status=201)

    monkeypatch.setattr(webpush, "send_push", fake_send)
    assert services.delivery_send(delivery_id=delivery_id, retry=None) == "sent"
    assert services.delivery_send(delivery_id=delivery_id, retry=None) == "skipped"
    assert len(sent) == 1
    assert sent[0]["topic"] == f"bam-{bam.pk}"
    assert PushSubscription.objects.count() == 1


@pytest.mark.parametrize(
    "header, seconds",
    [("7", 7.0), (None, None), ("soon", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
)
def test_retry_after_is_read_as_seconds_or_a_date(header, seconds):
    assert retry_after_seconds(header) == seconds


@pytest.mark.django_db
def test_a_delivery_that_cannot_be_sent_fails_and_is_not_retried(
    push_hosts, monkeypatch
):
    alice, bob = UserFactory(), UserFactory()
    bam = BamFactory(owner=alice, members=[bob])
    services.subscription_save(
        user=bob, endpoint="https://fcm.googleapis.com/fcm/send/c", keys=KEYS
    )
    monkeypatch.setattr(services, "user_socket_count", lambda *, user_id: 0)
    message = messaging_services.message_create(
        bam_id=bam.pk, sender=alice, content="x"
    )
    [delivery_id] = services.deliveries_plan(message_id=message.pk)

    def broken_send(**kwargs):
        raise ValueError("cannot encrypt")

    monkeypatch.setattr(webpush, "send_push", broken_send)
    assert services.delivery_send(delivery_id=delivery_id, retry=None) == "failed"
    assert PushDelivery.objects.get(pk=delivery_id).state == "failed"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "spelling",
    [
        "{origin}\\.notify.windows.com/push/{token}",  # urllib3 connects to {origin}
        "{origin}/push/{token}",  # allowed once, not in PUSH_ALLOWED_HOSTS now
    ],
)
def test_stored_endpoints_that_fail_the_rule_now_are_not_sent_to(
    settings, push_service, spelling
):
    settings.PUSH = {**settings.PUSH, "ALLOWED_HOSTS": ["*.notify.windows.com"]}
    alice, bob = UserFactory(), UserFactory()
    bam = BamFactory(owner=alice, members=[bob])
    endpoint = spelling.format(origin=push_service.origin, token=uuid.uuid4().hex)
    subscription = PushSubscription.objects.create(user=bob, endpoint=endpoint, **KEYS)
    message = messaging_services.message_create(
        bam_id=bam.pk, sender=alice, content="x"
    )
    delivery = PushDelivery.objects.create(subscription=subscription, message=message)
    seen = len(push_service.requests)
    refused = failures_counted("not_allowed")

    assert services.delivery_send(delivery_id=delivery.pk, retry=None) == "failed"
    assert push_service.requests[seen:] == [], "a push went to a refused endpoint"
    assert failures_counted("not_allowed") == refused + 1
    # Kept: the allow-list is configuration and may allow the host again.
    assert PushSubscription.objects.filter(pk=subscription.pk).exists()


def failures_counted(reason: str) -> float:
    labels = {"reason": reason}
    return REGISTRY.get_sample_value("bamchat_push_failures_total", labels) or 0.0


@pytest.mark.django_db
def test_a_mention_pushes_in_a_muted_bam_with_type_mention(push_hosts, monkeypatch):
    alice, bob, carol = UserFactory(), UserFactory(), UserFactory()
    bam = BamFactory(owner=alice, members=[bob, carol])
    for n, user in enumerate((bob, carol)):
        services.subscription_save(
            user=user, endpoint=f"https://fcm.googleapis.com/fcm/send/m{n}", keys=KEYS
        )
        services.membership_mute_set(bam_id=bam.pk, user=user, muted=True)
    monkeypatch.setattr(services, "user_socket_count", lambda *, user_id: 0)
    message = messaging_services.message_create(
        bam_id=bam.pk, sender=alice, content=f"look @{bob.username}"
    )
    [delivery_id] = services.deliveries_plan(message_id=message.pk)
    assert PushDelivery.objects.get(pk=delivery_id).subscription.user == bob
    sent = []
    monkeypatch.setattr(
        webpush, "send_push", lambda **kw: sent.append(kw) or PushAnswer(status=201)
    )
    assert services.delivery_send(delivery_id=delivery_id, retry=None) == "sent"
    assert sent[0]["payload"]["type"] == "mention"
    # An edit naming carol plans hers only; bob's device is not pushed twice.
    lifecycle.message_edit(
        message_id=message.pk,
        user=alice,
        content=f"look @{bob.username} @{carol.username}",
    )
    again = services.deliveries_plan(message_id=message.pk, user_ids=[bob.pk, carol.pk])
    assert [PushDelivery.objects.get(pk=p).subscription.user for p in again] == [carol]


class RecordingSender:
    """An app platform's sender that accepts every push and keeps it."""

    def __init__(self, platform):
        self.platform, self.sent = platform, []

    def send(self, *, target, notification):
        self.sent.append((target.user_id, notification))
        return Outcome(Result.SENT, 200)


@pytest.mark.django_db
def test_app_devices_follow_the_same_mention_rule(monkeypatch):
    alice, bob, carol, dave = UserFactory(), UserFactory(), UserFactory(), UserFactory()
    bam = BamFactory(owner=alice, members=[bob, carol, dave])
    senders = {}
    for platform, user, token in (
        ("fcm", bob, "bob:fcm"),
        ("apns", carol, "ab" * 32),
        ("fcm", dave, "dave:fcm"),
    ):
        PushDevice.objects.create(user=user, platform=platform, token=token)
        senders[platform] = RecordingSender(platform)
        monkeypatch.setitem(services.SENDERS, platform, senders[platform])
    for user in (bob, carol):
        services.membership_mute_set(bam_id=bam.pk, user=user, muted=True)
    monkeypatch.setattr(services, "user_socket_count", lambda *, user_id: 0)
    message = messaging_services.message_create(
        bam_id=bam.pk, sender=alice, content=f"look @{bob.username}"
    )
    planned = services.deliveries_plan(message_id=message.pk)
    users = [PushDelivery.objects.get(pk=p).device.user for p in planned]
    assert sorted(u.pk for u in users) == sorted([bob.pk, dave.pk])  # carol muted
    for delivery_id in planned:
        assert services.delivery_send(delivery_id=delivery_id, retry=None) == "sent"
    types = {user_id: n.data["type"] for user_id, n in senders["fcm"].sent}
    assert types == {bob.pk: "mention", dave.pk: "new-message"}
    [bob_push] = [n for user_id, n in senders["fcm"].sent if user_id == bob.pk]
    assert bob_push.web_payload["type"] == "mention"
    # An edit naming carol plans her app device only, with type mention.
    lifecycle.message_edit(
        message_id=message.pk,
        user=alice,
        content=f"look @{bob.username} @{carol.username}",
    )
    again = services.deliveries_plan(
        message_id=message.pk, user_ids=[bob.pk, carol.pk, dave.pk]
    )
    assert [PushDelivery.objects.get(pk=p).device.user for p in again] == [carol]
    assert services.delivery_send(delivery_id=again[0], retry=None) == "sent"
    [(user_id, notification)] = senders["apns"].sent
    assert user_id == carol.pk and notification.data["type"] == "mention"
