"""REST routes of the message lifecycle refuse what the services refuse."""

import json

import pytest

from messaging.models import Reaction
from messaging.services import message_create
from tests.factories import BamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("emoji", ["\ud83d", "\udc4d", "👍\udc4d"])
def test_a_lone_surrogate_emoji_is_a_400_on_emoji(rest, emoji):
    alice, bob = UserFactory(), UserFactory()
    bam = BamFactory(owner=alice, members=[bob])
    message = message_create(bam_id=bam.pk, sender=alice, content="hi")
    rest.force_authenticate(bob)
    resp = rest.generic(
        "POST",
        f"/bams/{bam.pk}/messages/{message.pk}/reactions",
        json.dumps({"emoji": emoji}),  # ASCII-escaped, as JSON allows
        content_type="application/json",
    )
    assert resp.status_code == 400, resp.data
    assert "emoji" in resp.data, resp.data
    assert not Reaction.objects.exists()


def test_removing_a_reaction_answers_the_documented_200(rest):
    alice, bob = UserFactory(), UserFactory()
    bam = BamFactory(owner=alice, members=[bob])
    message = message_create(bam_id=bam.pk, sender=alice, content="hi")
    rest.force_authenticate(bob)
    url = f"/bams/{bam.pk}/messages/{message.pk}/reactions"
    assert rest.post(url, {"emoji": "👍"}, format="json").status_code == 200
    resp = rest.delete(f"{url}/👍")
    assert resp.status_code == 200, resp.data
    assert resp.data == {"messageId": str(message.pk), "reactions": []}
    assert not Reaction.objects.exists()
