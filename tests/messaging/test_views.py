import pytest

from messaging.models import Message
from tests.factories import BamFactory, UserFactory

pytestmark = pytest.mark.django_db


def as_user(rest, user):
    rest.force_authenticate(user)
    return rest


@pytest.fixture
def trio():
    owner, member, outsider = UserFactory(), UserFactory(), UserFactory()
    return owner, member, outsider, BamFactory(owner=owner, members=[member])


@pytest.mark.parametrize("slash", ["", "/"])
def test_create_list_and_read_bams(rest, slash):
    owner, other = UserFactory(), UserFactory()
    as_user(rest, owner)
    created = rest.post(
        f"/bams{slash}",
        {"title": "Trip", "participantIds": [str(other.pk)]},
        format="json",
    )
    assert created.status_code == 201, created.data
    assert created.data["ownerId"] == str(owner.pk)
    assert {p["id"] for p in created.data["participants"]} == {
        str(owner.pk),
        str(other.pk),
    }
    listed = rest.get(f"/bams{slash}")
    assert listed.status_code == 200
    assert [b["id"] for b in listed.data["results"]] == [created.data["id"]]
    read = rest.get(f"/bams/{created.data['id']}{slash}")
    assert read.status_code == 200 and read.data["title"] == "Trip"


def test_outsiders_get_404_never_403(rest, trio):
    _, member, outsider, bam = trio
    as_user(rest, outsider)
    for method, path, body in [
        ("get", f"/bams/{bam.pk}", None),
        ("patch", f"/bams/{bam.pk}", {"title": "x"}),
        ("delete", f"/bams/{bam.pk}", None),
        ("get", f"/bams/{bam.pk}/messages", None),
        ("post", f"/bams/{bam.pk}/messages", {"text": "hi"}),
        ("post", f"/bams/{bam.pk}/participants", {"userId": str(outsider.pk)}),
        ("delete", f"/bams/{bam.pk}/participants/{member.pk}", None),
        ("get", "/bams/99999999", None),
        ("get", "/bams/not-an-id", None),
    ]:
        resp = getattr(rest, method)(path, body, format="json")
        assert resp.status_code == 404, (method, path, resp.status_code)
    assert not Message.objects.exists()


def test_owner_renames_deletes_member_may_not(rest, trio):
    owner, member, _, bam = trio
    as_user(rest, member)
    assert (
        rest.patch(f"/bams/{bam.pk}/", {"title": "mine"}, format="json").status_code
        == 403
    )
    assert rest.delete(f"/bams/{bam.pk}").status_code == 403
    as_user(rest, owner)
    assert (
        rest.patch(f"/bams/{bam.pk}", {"title": ""}, format="json").status_code == 400
    )
    renamed = rest.patch(f"/bams/{bam.pk}", {"title": "Renamed"}, format="json")
    assert renamed.status_code == 200 and renamed.data["title"] == "Renamed"
    assert rest.delete(f"/bams/{bam.pk}/").status_code == 204
    assert rest.get(f"/bams/{bam.pk}").status_code == 404


def test_participants_add_and_remove(rest, trio):
    owner, member, outsider, bam = trio
    as_user(rest, member)
    assert (
        rest.post(
            f"/bams/{bam.pk}/participants", {"userId": str(outsider.pk)}, format="json"
        ).status_code
        == 403
    )
    as_user(rest, owner)
    assert (
        rest.post(f"/bams/{bam.pk}/participants/", {}, format="json").status_code == 400
    )
    assert (
        rest.post(
            f"/bams/{bam.pk}/participants", {"userId": "999999"}, format="json"
        ).status_code
        == 400
    )
    added = rest.post(
        f"/bams/{bam.pk}/participants", {"userId": str(outsider.pk)}, format="json"
    )
    assert added.status_code == 201
    assert str(outsider.pk) in {p["id"] for p in added.data}
    as_user(rest, outsider)
    assert rest.delete(f"/bams/{bam.pk}/participants/{outsider.pk}/").status_code == 204
    assert rest.get(f"/bams/{bam.pk}").status_code == 404


@pytest.mark.parametrize("slash", ["", "/"])
def test_post_message_with_text_or_content(rest, trio, slash):
    owner, member, _, bam = trio
    as_user(rest, owner)
    resp = rest.post(
        f"/bams/{bam.pk}/messages{slash}",
        {"text": "hello", "toUserId": str(member.pk)},
        format="json",
    )
    assert resp.status_code == 201, resp.data
    body = resp.data
    assert body["content"] == body["text"] == "hello"
    assert body["toUserId"] == str(member.pk) and body["bamId"] == str(bam.pk)
    assert set(body) >= {
        "id",
        "bamId",
        "senderId",
        "sender",
        "toUserId",
        "content",
        "text",
        "type",
        "tempId",
        "createdAt",
    }
    second = rest.post(
        f"/bams/{bam.pk}/messages{slash}",
        {"content": "there", "type": "image", "tempId": "x1"},
        format="json",
    )
    assert second.status_code == 201 and second.data["type"] == "image"
    again = rest.post(
        f"/bams/{bam.pk}/messages{slash}",
        {"content": "there", "tempId": "x1"},
        format="json",
    )
    assert again.status_code == 200 and again.data["id"] == second.data["id"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "content"),
        ({"text": "   "}, "content"),
        ({"text": "x" * 4001}, "content"),  # the service names the one field
        ({"text": "ok", "type": "video"}, "type"),
        ({"text": "ok", "toUserId": "999999"}, "toUserId"),
        ({"text": "ok", "toUserId": "abc"}, "toUserId"),
        ({"content": 5}, "content"),
    ],
)
def test_bad_message_bodies_get_field_errors_and_write_nothing(rest, trio, body, field):
    owner, _, _, bam = trio
    as_user(rest, owner)
    resp = rest.post(f"/bams/{bam.pk}/messages", body, format="json")
    assert resp.status_code == 400, resp.data
    if field:
        assert field in resp.data, resp.data
    assert not Message.objects.exists()


def test_garbage_json_is_a_400_not_a_500(rest, trio):
    owner, _, _, bam = trio
    as_user(rest, owner)
    resp = rest.generic(
        "POST", f"/bams/{bam.pk}/messages", "{not json", content_type="application/json"
    )
    assert resp.status_code == 400
    resp = rest.post("/bams", ["a", "list"], format="json")
    assert resp.status_code == 400


def test_history_is_newest_first_cursor_paginated_and_after_is_in_order(rest, trio):
    owner, member, _, bam = trio
    as_user(rest, owner)
    ids = [
        rest.post(f"/bams/{bam.pk}/messages", {"text": f"m{i}"}, format="json").data[
            "id"
        ]
        for i in range(7)
    ]
    page1 = rest.get(f"/bams/{bam.pk}/messages?limit=3")
    assert [m["id"] for m in page1.data["results"]] == ids[::-1][:3]
    page2 = rest.get(page1.data["next"])
    assert [m["id"] for m in page2.data["results"]] == ids[::-1][3:6]
    page3 = rest.get(page2.data["next"])
    assert [m["id"] for m in page3.data["results"]] == ids[::-1][6:]
    assert page3.data["next"] is None
    as_user(rest, member)
    after = rest.get(f"/bams/{bam.pk}/messages/?after={ids[3]}")
    assert [m["id"] for m in after.data["results"]] == ids[4:]
    assert rest.get(f"/bams/{bam.pk}/messages?after=999999").status_code == 404
    assert rest.get(f"/bams/{bam.pk}/messages?after=junk").status_code == 404


def test_schema_and_docs_are_served(rest):
    schema = rest.get("/api/schema", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    docs = rest.get("/api/docs/")
    assert docs.status_code == 200
    page = docs.content.decode()
    assert "cdn.jsdelivr.net" not in page and "@latest" not in page
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page
    bundle = "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"
    assert bundle in page
    served = rest.get(bundle)
    assert served.status_code == 200
    served.close()


def test_anonymous_gets_401(rest):
    assert rest.get("/bams").status_code == 401
    assert rest.post("/bams", {"title": "x"}, format="json").status_code == 401


def test_rest_writes_are_rate_limited_with_retry_after(rest, trio, settings):
    owner, _, _, bam = trio
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "rest_write": "3/min"}
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": rates,
    }
    from django.core.cache import cache

    cache.clear()
    as_user(rest, owner)
    codes = [
        rest.post(
            f"/bams/{bam.pk}/messages", {"text": f"m{i}"}, format="json"
        ).status_code
        for i in range(4)
    ]
    assert codes == [201, 201, 201, 429]
    blocked = rest.post(f"/bams/{bam.pk}/messages", {"text": "again"}, format="json")
    assert blocked.status_code == 429 and int(blocked["Retry-After"]) > 0
    assert (
        rest.get(f"/bams/{bam.pk}/messages").status_code == 200
    )  # reads are not limited
    assert Message.objects.count() == 3


def test_non_staff_participant_may_not_post_system_messages(rest, trio):
    owner, _, _, bam = trio
    as_user(rest, owner)
    resp = rest.post(
        f"/bams/{bam.pk}/messages",
        {"content": "Your account is suspended", "type": "system"},
        format="json",
    )
    assert resp.status_code == 403, resp.data
    assert not Message.objects.exists()


def test_old_temp_id_in_another_bam_is_a_new_message(rest, trio):
    owner, member, _, bam = trio
    other = BamFactory(owner=member)
    as_user(rest, member)
    first = rest.post(
        f"/bams/{bam.pk}/messages", {"text": "x", "tempId": "t1"}, format="json"
    )
    assert first.status_code == 201
    as_user(rest, owner)
    rest.delete(f"/bams/{bam.pk}/participants/{member.pk}")
    as_user(rest, member)
    replay = rest.post(
        f"/bams/{bam.pk}/messages", {"text": "x", "tempId": "t1"}, format="json"
    )
    assert replay.status_code == 404
    moved = rest.post(
        f"/bams/{other.pk}/messages", {"text": "z", "tempId": "t1"}, format="json"
    )
    assert moved.status_code == 201 and moved.data["bamId"] == str(other.pk)
    assert moved.data["id"] != first.data["id"]


def test_non_ascii_digit_ids_are_404_or_400_everywhere(rest, trio):
    owner, _, _, bam = trio
    staff = UserFactory(is_staff=True)
    as_user(rest, owner)
    for digit in ["\u00b2", "\u2460", "\u0661"]:  # superscript, circled, Arabic
        for path in [
            f"/bams/{digit}",
            f"/bams/{digit}/messages",
            f"/bams/{bam.pk}/messages?after={digit}",
            f"/websocket/presence/{digit}",
            f"/websocket/bam/{digit}/online",
        ]:
            assert rest.get(path).status_code == 404, path
        deleted = rest.delete(f"/bams/{bam.pk}/participants/{digit}")
        assert deleted.status_code == 404
        for path, body in [
            (f"/bams/{bam.pk}/messages", {"text": "x", "toUserId": digit}),
            ("/bams", {"title": "x", "participantIds": [digit]}),
            (f"/bams/{bam.pk}/participants", {"userId": digit}),
        ]:
            resp = rest.post(path, body, format="json")
            assert resp.status_code == 400, (path, body, resp.status_code)
    as_user(rest, staff)
    notify = rest.post("/websocket/notify", {"userId": "²", "data": {}}, format="json")
    assert notify.status_code in (400, 404)
    assert not Message.objects.exists()
    assert bam.memberships.count() == 2


@pytest.mark.parametrize(
    "cursor",
    ["p=abc", "p=1e99", "p=%00", "p=99999999999999999999999", "r=1&p=%F0", "p=²"],
)
def test_forged_history_cursors_are_404(rest, trio, cursor):
    import base64

    owner, _, _, bam = trio
    as_user(rest, owner)
    rest.post(f"/bams/{bam.pk}/messages", {"text": "m"}, format="json")
    token = base64.b64encode(cursor.encode()).decode()
    resp = rest.get(f"/bams/{bam.pk}/messages", {"cursor": token})
    assert resp.status_code == 404, resp.status_code


@pytest.mark.parametrize("page", ["abc", "1e99", "%00", "²", "1e999", "-1", "0"])
def test_forged_page_numbers_are_404(rest, trio, page):
    owner, *_ = trio
    as_user(rest, owner)
    assert rest.get(f"/bams?page={page}").status_code == 404


def test_deeply_nested_json_is_a_400(rest, trio):
    owner, _, _, _ = trio
    staff = UserFactory(is_staff=True)
    deep = "[" * 50000 + "]" * 50000
    as_user(rest, owner)
    resp = rest.generic(
        "POST",
        "/bams",
        '{"title": "x", "participantIds": ' + deep + "}",
        content_type="application/json",
    )
    assert resp.status_code == 400
    as_user(rest, staff)
    resp = rest.generic(
        "POST",
        "/websocket/notify",
        f'{{"userId": "{owner.pk}", "data": {deep}}}',
        content_type="application/json",
    )
    assert resp.status_code == 400
    nested = "[" * 20 + "]" * 20
    shallow = f'{{"userId": "{owner.pk}", "data": {nested}}}'
    resp = rest.generic(
        "POST", "/websocket/notify", shallow, content_type="application/json"
    )
    assert resp.status_code == 200


def test_browsable_api_renders_history_and_participants_for_a_participant(rest, trio):
    owner, _, _, bam = trio
    as_user(rest, owner)
    rest.post(f"/bams/{bam.pk}/messages", {"text": "hello"}, format="json")
    for path in [
        f"/bams/{bam.pk}/messages",
        f"/bams/{bam.pk}/messages/",
        f"/bams/{bam.pk}/participants",
        f"/bams/{bam.pk}",
        "/bams",
    ]:
        resp = rest.get(path, HTTP_ACCEPT="text/html")
        assert resp.status_code in (200, 405), (path, resp.status_code)
        assert resp["Content-Type"].startswith("text/html"), path
    page = rest.get(f"/bams/{bam.pk}/messages", HTTP_ACCEPT="text/html")
    assert page.status_code == 200 and "hello" in page.content.decode()
