"""GET /search/messages through a live server: permissions, errors, pages."""

import pytest

pytestmark = pytest.mark.live


async def test_search_over_http_follows_membership_now(api):
    alice, bob = await api.account(), await api.account()
    bam = await api.bam(alice, bob)
    old = await api.post_message(alice, bam["id"], "budget <draft> for 2027")
    status, page = await api.request(
        "GET", "/search/messages", token=bob.access, params={"q": "budg"}
    )
    assert status == 200, page
    (hit,) = page["results"]
    assert hit["bamId"] == bam["id"] and hit["message"]["id"] == old["id"]
    assert hit["snippet"] == "<mark>budget</mark> &lt;draft&gt; for 2027"
    assert page["next"] is None

    for q in ["", "x" * 201, "-budget", '"' * 150]:
        status, body = await api.request(
            "GET", "/search/messages", token=bob.access, params={"q": q}
        )
        assert status == 400 and "q" in body, (q, status, body)

    await api.request(
        "DELETE",
        f"/bams/{bam['id']}/participants/{bob.id}",
        token=alice.access,
        expect=204,
    )
    status, page = await api.request(
        "GET", "/search/messages", token=bob.access, params={"q": "budget"}
    )
    assert status == 200 and page["results"] == [], page
    status, _ = await api.request(
        "GET",
        "/search/messages",
        token=bob.access,
        params={"q": "budget", "bamId": bam["id"]},
    )
    assert status == 404
