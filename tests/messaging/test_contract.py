"""A message's one shape: what ``message_payload`` builds is what the published
``Message`` schema says, field for field, with every part of a message present."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from messaging import lifecycle
from messaging.attachments import attachment_upload
from messaging.cleaning import message_text_of
from messaging.drafts import message_draft
from messaging.models import TEMP_ID_MAX_CHARS, TITLE_MAX_CHARS
from messaging.serializers import MessageSerializer, message_payload
from messaging.services import message_create
from tests.contract import generated
from tests.factories import BamFactory, UserFactory
from tests.messaging.attachment_files import PDF

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def contract():
    return generated()


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }


def _full_message(owner, peer, bam):
    first = message_create(bam_id=bam.pk, sender=peer, content="first")
    upload = attachment_upload(
        bam_id=bam.pk, uploader=owner, upload=SimpleUploadedFile("f.pdf", PDF)
    )
    message = message_create(
        bam_id=bam.pk,
        sender=owner,
        content=f"hi @{peer.username}",
        temp_id="t-1",
        attachment_ids=[str(upload.pk)],
        reply_to_id=str(first.pk),
    )
    lifecycle.reaction_set(message_id=message.pk, user=peer, emoji="👍")
    lifecycle.message_edit(
        message_id=message.pk, user=owner, content=f"hello @{peer.username}"
    )
    return message


def test_every_part_of_a_message_payload_is_in_the_published_schema(contract):
    owner, peer = UserFactory(), UserFactory()
    bam = BamFactory(owner=owner, members=[peer])
    message = _full_message(owner, peer, bam)
    payload = message_payload(type(message).objects.get(pk=message.pk))

    assert payload["attachments"] and payload["reactions"] and payload["mentions"]
    assert payload["replyTo"] and payload["editedAt"]
    assert contract.event_errors("new-message", payload) == []
    assert set(payload) == set(MessageSerializer().fields)


def test_a_tombstone_and_the_history_page_keep_the_schema(contract):
    owner, peer = UserFactory(), UserFactory()
    bam = BamFactory(owner=owner, members=[peer])
    message = _full_message(owner, peer, bam)
    lifecycle.message_delete(message_id=message.pk, user=owner)
    client = APIClient()
    client.force_authenticate(owner)

    history = client.get(f"/bams/{bam.pk}/messages")
    listing = client.get("/bams")
    detail = client.get(f"/bams/{bam.pk}")

    assert history.status_code == listing.status_code == detail.status_code == 200
    assert history.json()["results"][0]["deleted"] is True
    for path, response in (
        (f"/bams/{bam.pk}/messages", history),
        ("/bams", listing),
        (f"/bams/{bam.pk}", detail),
    ):
        assert contract.response_errors("GET", path, 200, response.json()) == []
    item = listing.json()["results"][0]
    assert {"unreadCount", "unreadMentions", "lastMessage"} <= set(item)


def test_an_extra_field_breaks_the_contract(contract):
    owner = UserFactory()
    bam = BamFactory(owner=owner)
    payload = message_payload(message_create(bam_id=bam.pk, sender=owner, content="x"))

    errors = contract.event_errors("new-message", {**payload, "surprise": 1})

    assert errors and "surprise" in errors[0]


def test_limits_are_published_as_the_services_apply_them(contract):
    schemas = contract.openapi["components"]["schemas"]
    assert schemas["BamCreateRequest"]["properties"]["title"]["maxLength"] == (
        TITLE_MAX_CHARS
    )
    temp_id = schemas["MessageCreateRequest"]["properties"]["tempId"]
    assert temp_id["maxLength"] == TEMP_ID_MAX_CHARS


def test_text_is_the_alias_of_content():
    assert message_text_of({"text": "a"}) == "a"
    assert message_text_of({"content": "b", "text": "a"}) == "b"
    assert message_text_of({}) is None


@pytest.fixture
def payload_builds(monkeypatch):
    """How many times a message payload is built (each build shapes its replyTo)."""
    from messaging import serializers

    builds = []
    original = serializers.reply_payload

    def counted(message):
        builds.append(message.pk)
        return original(message)

    monkeypatch.setattr(serializers, "reply_payload", counted)
    return builds


def test_a_rest_write_builds_its_payload_once(payload_builds):
    owner = UserFactory()
    bam = BamFactory(owner=owner)
    client = APIClient()
    client.force_authenticate(owner)

    response = client.post(f"/bams/{bam.pk}/messages", {"text": "once"}, "json")

    assert response.status_code == 201
    assert payload_builds == [int(response.json()["id"])]


def test_a_socket_write_builds_its_payload_once(payload_builds):
    from realtime.writer import _store

    owner = UserFactory()
    bam = BamFactory(owner=owner)
    draft = message_draft(bam_id=bam.pk, sender=owner, content="once")

    (payload,) = _store([draft])

    assert payload_builds == [int(payload["id"])]
