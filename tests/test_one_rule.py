"""One rule in one place: REST and Socket.IO accept and refuse the same input."""

import pytest

pytestmark = pytest.mark.live

CASES = [
    ("x" * 4000 + " ", True),  # 4000 characters after trimming: accepted
    ("  " + "x" * 4000 + "\n", True),
    ("x" * 4001, False),
    ("   ", False),
    (42, False),  # a number is invalid, not coerced
]


@pytest.mark.parametrize("content, accepted", CASES)
async def test_message_content_rule_is_the_same_over_rest_and_socket_io(
    api, peers, content, accepted
):
    me = await api.account()
    bam = await api.bam(me)
    status, body = await api.request(
        "POST",
        f"/bams/{bam['id']}/messages",
        token=me.access,
        json={"content": content},
    )
    peer = await peers(me)
    ack = await peer.call("send-message", {"bamId": bam["id"], "content": content})
    assert (status == 201) is accepted, (status, body)
    assert ack["ok"] is accepted, ack
    if not accepted:
        assert status == 400 and ack["error"]["code"] == "invalid"
        assert "content" in body and "content" in ack["error"]["fields"]


@pytest.mark.parametrize(
    "title, accepted", [("  t  ", True), ("t" * 200 + " ", True), ("t" * 201, False)]
)
async def test_bam_title_rule_is_the_services(api, title, accepted):
    me = await api.account()
    status, body = await api.request(
        "POST", "/bams", token=me.access, json={"title": title}
    )
    assert (status == 201) is accepted, (status, body)
    if accepted:
        assert body["title"] == title.strip()
