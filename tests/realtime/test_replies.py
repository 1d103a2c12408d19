"""Replies end to end: REST and Socket.IO take ``replyToId``; replay shows the
original as it is now."""

import pytest

pytestmark = pytest.mark.live


async def test_reply_over_socket_and_rest_and_its_replay_after_deletion(api, peers):
    alice, bob = await api.account(), await api.account()
    bam = await api.bam(alice, bob)
    original = await api.post_message(alice, bam["id"], "the question")
    b = await peers(bob)
    joined = await b.call("join-bam", {"bamId": bam["id"]})
    ack = await b.call(
        "send-message",
        {"bamId": bam["id"], "content": "the answer", "replyToId": original["id"]},
    )
    assert ack["ok"], ack
    reply = ack["message"]
    assert reply["replyTo"] == {
        "id": original["id"],
        "senderId": alice.id,
        "preview": "the question",
        "deleted": False,
    }
    by_rest = await api.post_message(
        alice, bam["id"], "again", replyToId=original["id"]
    )
    assert by_rest["replyTo"]["id"] == original["id"]

    other = await api.bam(alice)
    status, body = await api.request(
        "POST",
        f"/bams/{other['id']}/messages",
        token=alice.access,
        json={"text": "x", "replyToId": original["id"]},
    )
    assert status == 400 and "replyToId" in body, body
    bad = await b.call(
        "send-message", {"bamId": bam["id"], "content": "x", "replyToId": "nope"}
    )
    assert bad["error"]["code"] == "invalid" and "replyToId" in bad["error"]["fields"]

    await api.request(
        "DELETE",
        f"/bams/{bam['id']}/messages/{original['id']}",
        token=alice.access,
        expect=204,
    )
    gone = {"id": original["id"], "senderId": alice.id}
    gone |= {"preview": None, "deleted": True}
    _, history = await api.request(
        "GET", f"/bams/{bam['id']}/messages", token=bob.access, expect=200
    )
    shown = {m["id"]: m for m in history["results"]}
    assert shown[reply["id"]]["replyTo"] == gone
    late = await peers(bob)
    await late.call("join-bam", {"bamId": bam["id"], "sinceSeq": joined["lastSeq"]})
    replayed = {m["id"]: m for m in late.got("new-message")}
    assert replayed[reply["id"]]["replyTo"] == gone
