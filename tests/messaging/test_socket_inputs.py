"""The messaging rules hold over Socket.IO too: the handlers call the same services."""

import pytest

pytestmark = pytest.mark.live


def error_code(ack) -> str | None:
    return None if ack.get("ok") else ack["error"]["code"]


async def test_non_staff_cannot_send_system_messages(api, peers):
    alice, bob = await api.account("sys"), await api.account("sys")
    bam = await api.bam(alice, bob)
    a = await peers(alice)
    ack = await a.call(
        "send-message", {"bamId": bam["id"], "content": "Fake notice", "type": "system"}
    )
    assert error_code(ack) == "forbidden", ack
    _, history = await api.request(
        "GET", f"/bams/{bam['id']}/messages", token=alice.access, expect=200
    )
    assert history["results"] == []


async def test_old_temp_id_is_not_replayed_after_removal(api, peers):
    alice, bob = await api.account("tmp"), await api.account("tmp")
    x, z = await api.bam(alice, bob), await api.bam(bob)
    b = await peers(bob)
    first = await b.call(
        "send-message", {"bamId": x["id"], "content": "in X", "tempId": "t-1"}
    )
    assert first["ok"], first
    await api.request(
        "DELETE", f"/bams/{x['id']}/participants/{bob.id}", token=alice.access
    )
    replay = await b.call(
        "send-message", {"bamId": x["id"], "content": "again", "tempId": "t-1"}
    )
    assert error_code(replay) == "not_found", replay
    nowhere = await b.call(
        "send-message", {"bamId": "99999999", "content": "x", "tempId": "t-1"}
    )
    assert error_code(nowhere) == "not_found", nowhere
    moved = await b.call(
        "send-message", {"bamId": z["id"], "content": "in Z", "tempId": "t-1"}
    )
    assert moved["ok"] and moved["message"]["bamId"] == z["id"], moved
    assert moved["message"]["id"] != first["message"]["id"]


@pytest.mark.parametrize(
    ("payload", "codes"),
    [
        ({"bamId": "\u00b2", "content": "x"}, {"not_found", "invalid"}),
        ({"content": "a\ud800b"}, {"invalid"}),
        ({"content": "a\x00b"}, {"invalid"}),
        ({"content": "ok", "tempId": "\udfff"}, {"invalid"}),
        ({"content": "ok", "toUserId": "\u2460"}, {"invalid"}),
    ],
)
async def test_unstorable_input_is_refused_not_internal(api, peers, payload, codes):
    alice = await api.account("bad")
    bam = await api.bam(alice)
    a = await peers(alice)
    ack = await a.call("send-message", {"bamId": bam["id"], **payload})
    assert error_code(ack) in codes, ack
    join = await a.call("join-bam", "\u00b2")
    assert error_code(join) in {"not_found", "invalid"}, join
    _, history = await api.request(
        "GET", f"/bams/{bam['id']}/messages", token=alice.access, expect=200
    )
    assert history["results"] == []


async def test_react_with_a_lone_surrogate_is_invalid_not_internal(api, peers):
    alice = await api.account("react")
    bam = await api.bam(alice)
    sent = await api.post_message(alice, bam["id"], "hi")
    a = await peers(alice)
    ack = await a.call("react", {"messageId": sent["id"], "emoji": "\ud83d"})
    assert error_code(ack) == "invalid", ack
    assert "emoji" in ack["error"]["fields"], ack
    _, history = await api.request(
        "GET", f"/bams/{bam['id']}/messages", token=alice.access, expect=200
    )
    assert history["results"][0]["reactions"] == []
