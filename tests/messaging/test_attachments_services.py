"""Attachment services in process: the cleanup job, previews, and history that
loads attachments without a query per message."""

from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone

from messaging import selectors
from messaging.attachments import (
    attachment_upload,
    attachments_cleanup,
    message_attachments_delete,
)
from messaging.models import Attachment
from messaging.serializers import message_payload, message_preview
from messaging.services import message_create
from tests.factories import BamFactory, UserFactory
from tests.messaging.attachment_files import PDF, png

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }


def _upload(bam, user, data=PDF, name="f.pdf") -> Attachment:
    return attachment_upload(
        bam_id=bam.pk, uploader=user, upload=SimpleUploadedFile(name, data)
    )


def _age(attachment: Attachment, hours: float) -> None:
    Attachment.objects.filter(pk=attachment.pk).update(
        created_at=timezone.now() - timedelta(hours=hours)
    )


def test_cleanup_command_removes_old_unattached_uploads_and_their_files():
    user = UserFactory()
    bam = BamFactory(owner=user, members=[])
    old_unused = _upload(bam, user, png(100, 80), "p.png")
    old_used = _upload(bam, user)
    fresh_unused = _upload(bam, user)
    message_create(bam_id=bam.pk, sender=user, content="", attachment_ids=[old_used.pk])
    for attachment in (old_unused, old_used):
        _age(attachment, 25)
    assert default_storage.exists(old_unused.file)
    assert default_storage.exists(old_unused.thumbnail)

    call_command("attachments_cleanup")

    assert set(Attachment.objects.values_list("pk", flat=True)) == {
        old_used.pk,
        fresh_unused.pk,
    }
    assert not default_storage.exists(old_unused.file)
    assert not default_storage.exists(old_unused.thumbnail)
    assert default_storage.exists(old_used.file)
    assert attachments_cleanup() == 0


def test_preview_of_a_message_with_only_attachments():
    user = UserFactory()
    bam = BamFactory(owner=user, members=[])
    attachment = _upload(bam, user)
    message = message_create(
        bam_id=bam.pk, sender=user, content="  ", attachment_ids=[str(attachment.pk)]
    )
    assert message.content == ""
    assert message_preview(message) == "📎 attachment"
    fetched = selectors.message_list(bam=bam).get(pk=message.pk)
    assert message_preview(fetched) == "📎 attachment"
    text = message_create(bam_id=bam.pk, sender=user, content="hello")
    assert message_preview(text) == "hello"


def test_history_and_replay_load_attachments_in_one_query(
    django_assert_max_num_queries,
):
    user = UserFactory()
    bam = BamFactory(owner=user, members=[])
    for n in range(6):
        message_create(
            bam_id=bam.pk,
            sender=user,
            content=f"m{n}",
            attachment_ids=[_upload(bam, user).pk, _upload(bam, user).pk],
        )
    # Messages with their senders, their reactions, their mentions, their
    # attachments: four queries however many messages (the replay adds one for
    # message changes).
    with django_assert_max_num_queries(4):
        payloads = [message_payload(m) for m in selectors.message_list(bam=bam)]
    assert all(len(p["attachments"]) == 2 for p in payloads)
    with django_assert_max_num_queries(5):
        events = selectors.bam_events_between(bam_id=bam.pk, after_seq=0)
    assert [len(data["attachments"]) for _, data in events] == [2] * 6


def test_deleting_a_bam_deletes_its_files():
    from messaging.services import bam_delete

    user = UserFactory()
    bam = BamFactory(owner=user, members=[])
    attachment = _upload(bam, user, png(50, 50), "x.png")
    bam_delete(bam_id=bam.pk, user=user)
    assert not default_storage.exists(attachment.file)
    assert not default_storage.exists(attachment.thumbnail)


def test_a_message_erased_for_good_takes_its_files_along():
    user = UserFactory()
    bam = BamFactory(owner=user, members=[])
    kept = _upload(bam, user)
    gone = _upload(bam, user, png(60, 40), "g.png")
    message = message_create(
        bam_id=bam.pk, sender=user, content="", attachment_ids=[gone.pk]
    )
    assert message_attachments_delete(message_id=message.pk) == 1
    assert list(Attachment.objects.values_list("pk", flat=True)) == [kept.pk]
    assert not default_storage.exists(gone.file)
    assert not default_storage.exists(gone.thumbnail)
    assert default_storage.exists(kept.file)


def test_deleting_a_message_for_everyone_removes_its_files():
    from messaging.lifecycle import message_delete

    user = UserFactory()
    bam = BamFactory(owner=user, members=[])
    gone = _upload(bam, user, png(60, 40), "g.png")
    message = message_create(
        bam_id=bam.pk, sender=user, content="look", attachment_ids=[gone.pk]
    )
    message_delete(message_id=message.pk, user=user)
    assert not Attachment.objects.exists()
    assert not default_storage.exists(gone.file)
    payload = message_payload(selectors.message_list_query().get(pk=message.pk))
    assert payload["deleted"] is True and payload["attachments"] == []


def test_the_cleanup_runs_on_the_task_queue_once_per_period(settings):
    from django.core.cache import cache

    from bamchat.tasks import enqueue_due_periodic
    from messaging.tasks import attachments_cleanup_task

    cache.clear()
    assert attachments_cleanup_task.module_path in enqueue_due_periodic()
    assert attachments_cleanup_task.module_path not in enqueue_due_periodic()


def test_pending_uploads_are_held_to_the_users_quota(settings):
    from bamchat.errors import TooLarge

    settings.ATTACHMENT_QUOTA_BYTES = 3 * len(PDF)
    user, other = UserFactory(), UserFactory()
    bam = BamFactory(owner=user, members=[other])
    first, _, _ = (_upload(bam, user) for _ in range(3))
    with pytest.raises(TooLarge) as refused:
        _upload(bam, user)
    assert "send" in refused.value.message  # it says what to do
    assert Attachment.objects.filter(uploader=user).count() == 3
    assert len(default_storage.listdir(f"attachments/{bam.pk}")[1]) == 3
    _upload(bam, other)  # per user
    message_create(bam_id=bam.pk, sender=user, content="", attachment_ids=[first.pk])
    _upload(bam, user)  # an upload in a message no longer counts
