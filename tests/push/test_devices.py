"""App devices in process: the badge count, credentials that are missing, and the
admin's test push."""

import pytest
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from messaging import services as messaging_services
from messaging.models import Membership
from push import services
from push.models import PushDelivery, PushDevice
from push.selectors import unread_total
from push.tasks import push_device_test
from tests.factories import BamFactory, UserFactory
from tests.push.test_services import failures_counted

pytestmark = pytest.mark.django_db


def test_unread_total_counts_every_bam_and_follows_reads():
    alice, bob, carol = UserFactory(), UserFactory(), UserFactory()
    first = BamFactory(owner=alice, members=[bob])
    second = BamFactory(owner=carol, members=[bob, alice])
    for bam, sender in ((first, alice), (second, carol), (second, carol)):
        messaging_services.message_create(bam_id=bam.pk, sender=sender, content="x")
    messaging_services.message_create(bam_id=second.pk, sender=bob, content="mine")
    assert unread_total(user_id=bob.pk) == 3
    assert unread_total(user_id=alice.pk) == 3  # carol's two and bob's one
    Membership.objects.filter(bam=second, user=bob).update(last_read_seq=2)
    assert unread_total(user_id=bob.pk) == 1
    Membership.objects.filter(bam=first, user=bob).update(muted=True)
    assert unread_total(user_id=bob.pk) == 1  # a muted BAM's unread still count


@pytest.mark.parametrize("platform, token", [("fcm", "abc:def"), ("apns", "ab" * 32)])
def test_missing_credentials_fail_the_push_without_an_exception(
    settings, monkeypatch, caplog, platform, token
):
    settings.FCM = {**settings.FCM, "CREDENTIALS_FILE": "", "CREDENTIALS_JSON": ""}
    settings.APNS = {**settings.APNS, "KEY_FILE": ""}
    alice, bob = UserFactory(), UserFactory()
    bam = BamFactory(owner=alice, members=[bob])
    PushDevice.objects.create(user=bob, platform=platform, token=token)
    monkeypatch.setattr(services, "user_socket_count", lambda *, user_id: 0)
    message = messaging_services.message_create(
        bam_id=bam.pk, sender=alice, content="x"
    )
    [delivery_id] = services.deliveries_plan(message_id=message.pk)
    before = failures_counted("credentials")
    assert services.delivery_send(delivery_id=delivery_id, retry=None) == "failed"
    assert failures_counted("credentials") == before + 1
    assert PushDelivery.objects.get(pk=delivery_id).platform == platform
    [line] = [r for r in caplog.records if "push not sent" in r.getMessage()]
    assert line.exc_info is None
    assert ("FCM_CREDENTIALS_FILE" if platform == "fcm" else "APNS_KEY_FILE") in (
        line.getMessage()
    )
    assert PushDevice.objects.filter(token=token).exists()


def test_send_test_push_action_queues_one_push_per_app_device(admin_client):
    bob = UserFactory()
    devices = [
        PushDevice.objects.create(user=bob, platform="fcm", token="t1"),
        PushDevice.objects.create(user=bob, platform="apns", token="ab" * 32),
    ]
    changelist = reverse("admin:push_pushdevice_changelist")
    page = admin_client.get(changelist, {"q": bob.username})
    assert page.status_code == 200 and "t1" in page.content.decode()
    response = admin_client.post(
        changelist,
        {"action": "send_test_push", "_selected_action": [d.pk for d in devices]},
        follow=True,
    )
    assert "Queued a test push to 2 devices" in response.content.decode()
    queued = DBTaskResult.objects.filter(task_path=push_device_test.module_path)
    assert sorted(r.args_kwargs["args"][0] for r in queued) == [d.pk for d in devices]
