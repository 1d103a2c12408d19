"""Message lifecycle end to end over Socket.IO and REST, checked the Zulip way:
a client that applies the events in order ends with what a REST fetch returns."""

import pytest

from tests.live import Peer

pytestmark = pytest.mark.live

LIFECYCLE_EVENTS = (
    "new-message",
    "message-updated",
    "message-deleted",
    "reaction-updated",
)


def apply_events(events: list[tuple[str, dict]]) -> dict[str, dict]:
    """The messages a client holds after applying BAM events in order."""
    state: dict[str, dict] = {}
    for name, data in events:
        if name == "new-message":
            state[data["id"]] = {
                **data,
                "reactions": [dict(r) for r in data["reactions"]],
            }
        elif name == "message-updated":
            state[data["id"]].update(
                content=data["content"], text=data["text"], editedAt=data["editedAt"]
            )
        elif name == "message-deleted":
            state[data["id"]].update(
                deleted=True, content=None, text=None, reactions=[], attachments=[]
            )
        elif name == "reaction-updated":
            reactions = state[data["messageId"]]["reactions"]
            entry = next((r for r in reactions if r["emoji"] == data["emoji"]), None)
            if entry is None:
                entry = {"emoji": data["emoji"], "count": 0, "userIds": []}
                reactions.append(entry)
            users = set(entry["userIds"])
            (users.add if data["on"] else users.discard)(data["userId"])
            entry.update(count=data["count"], userIds=sorted(users, key=int))
            if entry["count"] == 0:
                reactions.remove(entry)
    return state


def comparable(message: dict) -> dict:
    """What must agree between the rebuilt and the fetched state of a message."""
    reactions = [
        {**r, "userIds": sorted(r["userIds"], key=int)} for r in message["reactions"]
    ]
    keys = ("id", "seq", "content", "text", "editedAt", "deleted", "attachments")
    return {**{k: message[k] for k in keys}, "reactions": reactions}


async def verify_state(api, who, bam_id: str, peer: Peer) -> None:
    """The state rebuilt from ``peer``'s events equals a fresh REST fetch."""
    events = [
        (name, data)
        for name, data in peer.ordered
        if name in LIFECYCLE_EVENTS and data["bamId"] == bam_id
    ]
    seqs = [data["seq"] for _, data in events]
    assert seqs == sorted(set(seqs)), f"events repeated or out of order: {seqs}"
    _, page = await api.request(
        "GET", f"/bams/{bam_id}/messages?limit=200", token=who.access, expect=200
    )
    fetched = {m["id"]: comparable(m) for m in page["results"]}
    rebuilt = {i: comparable(m) for i, m in apply_events(events).items()}
    assert rebuilt == fetched


async def test_edit_delete_react_and_read_are_seen_live_and_replayed(api, peers):
    alice, bob, carol = [await api.account(n) for n in ("alice", "bob", "carol")]
    bam = await api.bam(alice, bob, carol)
    a, b = await peers(alice), await peers(bob)
    b_elsewhere = await peers(bob)  # bob's other device, not in the room
    for peer in (a, b):
        assert (await peer.call("join-bam", bam["id"]))["ok"]

    sent = await a.call("send-message", {"bamId": bam["id"], "content": "helo"})
    message_id = sent["message"]["id"]
    other = await api.post_message(bob, bam["id"], "second")

    edited = await a.call("edit-message", {"messageId": message_id, "content": "hello"})
    assert edited["ok"] and edited["message"]["content"] == "hello", edited
    assert edited["message"]["editedAt"].endswith("Z")
    update = (await b.wait_for("message-updated"))[0]
    assert update == {
        "id": message_id,
        "bamId": bam["id"],
        "seq": 3,
        "content": "hello",
        "text": "hello",
        "editedAt": edited["message"]["editedAt"],
    }

    reacted = await b.call("react", {"messageId": message_id, "emoji": "🎉"})
    assert reacted == {
        "ok": True,
        "reactions": [{"emoji": "🎉", "count": 1, "userIds": [bob.id]}],
    }
    await a.call("react", {"messageId": message_id, "emoji": "🎉"})
    await a.call("react", {"messageId": message_id, "emoji": "🎉", "on": False})
    reaction = (await a.wait_for("reaction-updated", count=3))[-1]
    assert reaction["on"] is False and reaction["count"] == 1
    assert reaction["userId"] == alice.id and reaction["messageId"] == message_id

    read = await b.call("mark-read", {"bamId": bam["id"], "messageId": message_id})
    assert read == {
        "ok": True,
        "bamId": bam["id"],
        "messageId": message_id,
        "unreadCount": 0,
    }
    for peer in (a, b_elsewhere):
        receipt = (await peer.wait_for("read-receipt"))[0]
        assert receipt["userId"] == bob.id and receipt["messageId"] == message_id

    _, _removed = await api.request(
        "DELETE",
        f"/bams/{bam['id']}/messages/{other['id']}",
        token=bob.access,
        expect=204,
    )
    deleted = (await a.wait_for("message-deleted"))[0]
    assert deleted["id"] == other["id"] and deleted["deletedAt"].endswith("Z")
    _, rest_reactions = await api.request(
        "POST",
        f"/bams/{bam['id']}/messages/{message_id}/reactions",
        token=carol.access,
        json={"emoji": ":fire:"},
        expect=200,
    )
    assert [r["emoji"] for r in rest_reactions["reactions"]] == ["🎉", ":fire:"]
    fence = await api.post_message(carol, bam["id"], "fence")
    for peer in (a, b):
        await peer.wait_for("new-message", where=lambda m: m["id"] == fence["id"])
        await verify_state(api, alice, bam["id"], peer)

    # Carol was never in the room: a join with sinceSeq 0 replays everything once.
    c = await peers(carol)
    ack = await c.call("join-bam", {"bamId": bam["id"], "sinceSeq": 0})
    assert (
        ack["ok"] and ack["missed"] == fence["seq"] and ack["lastSeq"] == fence["seq"]
    )
    await verify_state(api, carol, bam["id"], c)
    # And from the middle, with a message id: only what came after it.
    d = await peers(carol)
    ack = await d.call("join-bam", {"bamId": bam["id"], "since": other["id"]})
    assert ack["missed"] == fence["seq"] - 2, ack
    assert [e["seq"] for _, e in d.ordered if "seq" in e] == list(
        range(3, fence["seq"] + 1)
    )


@pytest.mark.parametrize(
    "event, payload, code",
    [
        ("edit-message", "x", "invalid"),
        ("edit-message", {"messageId": "²", "content": "x"}, "not_found"),
        ("edit-message", {"messageId": "{own}", "content": "   "}, "invalid"),
        ("edit-message", {"messageId": "{own}", "content": 7}, "invalid"),
        ("edit-message", {"messageId": "{theirs}", "content": "x"}, "forbidden"),
        ("delete-message", {"messageId": "{theirs}"}, "forbidden"),
        ("delete-message", {}, "not_found"),
        ("react", {"messageId": "{own}", "emoji": "nope"}, "invalid"),
        ("react", {"messageId": "{own}", "emoji": "👍", "on": "yes"}, "invalid"),
        ("react", {"messageId": "999999", "emoji": "👍"}, "not_found"),
        ("mark-read", {"bamId": "{bam}", "messageId": "abc"}, "not_found"),
        ("mark-read", {"messageId": "{own}"}, "invalid"),
        ("mark-read", {"bamId": "{outside}", "messageId": "{own}"}, "not_found"),
    ],
)
async def test_bad_lifecycle_input_is_refused_and_changes_nothing(
    api, peers, event, payload, code
):
    me, them = await api.account(), await api.account()
    bam = await api.bam(them, me)  # owned by them: only the sender may delete
    outside = await api.bam(them)
    own = await api.post_message(me, bam["id"], "mine")
    theirs = await api.post_message(them, bam["id"], "theirs")
    names = {
        "{own}": own["id"],
        "{theirs}": theirs["id"],
        "{bam}": bam["id"],
        "{outside}": outside["id"],
    }
    if isinstance(payload, dict):
        payload = {
            k: names.get(v, v) if isinstance(v, str) else v for k, v in payload.items()
        }
    peer = await peers(me)
    ack = await peer.call(event, payload)
    assert ack["ok"] is False and ack["error"]["code"] == code, ack
    _, page = await api.request(
        "GET", f"/bams/{bam['id']}/messages", token=me.access, expect=200
    )
    assert [(m["seq"], m["content"], m["reactions"]) for m in page["results"]] == [
        (2, "theirs", []),
        (1, "mine", []),
    ]
    assert peer.client.connected
