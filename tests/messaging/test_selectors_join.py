"""Join points of many joins at once, as each alone would get it."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bamchat.errors import DomainError
from messaging import selectors, services
from tests.factories import BamFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_bam_join_points_match_bam_join_point_one_by_one():
    owner, member, outsider = UserFactory(), UserFactory(), UserFactory()
    bam = BamFactory(owner=owner, members=[member])
    first = services.message_create(bam_id=bam.pk, sender=member, content="one")
    services.message_create(bam_id=bam.pk, sender=owner, content="two")
    requests = [
        (bam.pk, owner.pk, None),
        (bam.pk, member.pk, str(first.pk)),
        (bam.pk, outsider.pk, None),
        (bam.pk, member.pk, "not-an-id"),
        (bam.pk, member.pk, str(10**9)),
    ]
    with CaptureQueriesContext(connection) as queries:
        many = selectors.bam_join_points(requests)
    # One membership read for all; the anchors of ``since`` one each.
    assert len(queries) == 1 + 2
    for (bam_id, user_id, since), got in zip(requests, many, strict=True):
        try:
            alone = selectors.bam_join_point(
                bam_id=bam_id, user_id=user_id, since_message_id=since
            )
        except DomainError as exc:
            assert type(got) is type(exc) and got.message == exc.message
        else:
            assert got == alone
    assert many[0] == (2, None) and many[1] == (2, first.seq)
