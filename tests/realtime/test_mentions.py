"""Mentions end to end: payloads, ``notification`` events, unread mentions and
replay, through real clients."""

import pytest

pytestmark = pytest.mark.live


async def test_mention_notifies_outside_the_room_even_when_muted(api, peers):
    alice, bob, carol = await api.account(), await api.account(), await api.account()
    bam = await api.bam(alice, bob, carol)
    await api.request(
        "PATCH",
        f"/bams/{bam['id']}/membership",
        token=bob.access,
        json={"muted": True},
        expect=200,
    )
    b, c = await peers(bob), await peers(carol)  # connected, in no room
    joined = await b.call("join-bam", {"bamId": (await api.bam(bob))["id"]})
    assert joined["ok"], joined
    sent = await api.post_message(alice, bam["id"], f"@{bob.username.upper()} look")
    assert sent["mentions"] == [bob.id]
    (note,) = await b.wait_for("notification")
    assert note == {
        "type": "mention",
        "bamId": bam["id"],
        "messageId": sent["id"],
        "senderId": alice.id,
    }
    (plain,) = await c.wait_for("notification")
    assert plain["type"] == "new-message" and plain["messageId"] == sent["id"]

    # An edit that names carol notifies her once; bob is not told again.
    await api.request(
        "PATCH",
        f"/bams/{bam['id']}/messages/{sent['id']}",
        token=alice.access,
        json={"content": f"@{bob.username} @{carol.username} look"},
        expect=200,
    )
    await c.wait_for("notification", where=lambda n: n["type"] == "mention")
    marker = await api.post_message(alice, bam["id"], "@all fence")
    await b.wait_for("notification", count=2)
    await c.wait_for("notification", count=3)
    mentions_to_bob = [n["messageId"] for n in b.got("notification")]
    assert mentions_to_bob == [sent["id"], marker["id"]]

    _, listed = await api.request("GET", "/bams", token=bob.access, expect=200)
    (item,) = [i for i in listed["results"] if i["id"] == bam["id"]]
    assert (item["unreadMentions"], item["unreadCount"]) == (2, 2)

    late = await peers(carol)
    ack = await late.call("join-bam", {"bamId": bam["id"], "sinceSeq": 0})
    assert ack["ok"], ack
    replayed = {m["id"]: m["mentions"] for m in late.got("new-message")}
    assert replayed == {
        sent["id"]: sorted([bob.id, carol.id], key=int),
        marker["id"]: sorted([bob.id, carol.id], key=int),
    }
