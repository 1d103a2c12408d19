"""The /websocket/* routes: permissions, validation and figures (in process)."""

import pytest
from asgiref.sync import async_to_sync

from realtime.models import Presence, ServerProcess
from realtime.roster import SocketInfo
from realtime.server import sio
from tests.factories import BamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(db):
    from django.utils import timezone

    staff = UserFactory(is_staff=True)
    alice, bob, outsider = UserFactory(), UserFactory(), UserFactory()
    bam = BamFactory(owner=alice, members=[bob])
    roster = sio.roster
    ServerProcess.objects.create(
        id=roster.process_id, host="h", pid=1, last_heartbeat=timezone.now()
    )
    sockets = [
        SocketInfo("s1", "e1", alice.pk, alice.username, 0, "websocket", "::1"),
        SocketInfo("s2", "e2", alice.pk, alice.username, 0, "polling", "::1"),
    ]
    for info in sockets:
        async_to_sync(roster.add)(info)
    async_to_sync(roster.enter)(sockets[0], bam.pk)
    async_to_sync(roster.view.set_status)(alice.pk, "away")
    Presence.objects.create(user=alice, status="away", last_seen=timezone.now())
    yield staff, alice, bob, outsider, bam
    for info in sockets:
        async_to_sync(roster.remove)(info.sid)
    async_to_sync(roster.view.offline_if_gone_many)([alice.pk])


def test_permissions(rest, world):
    _, alice, *_ = world
    routes = [
        ("get", "/websocket/stats", None),
        ("post", "/websocket/notify", {"userId": str(alice.pk), "data": {}}),
        ("post", "/websocket/broadcast/", {"data": {}}),
    ]
    for method, path, body in routes:
        assert getattr(rest, method)(path, body, format="json").status_code == 401
    rest.force_authenticate(alice)
    for method, path, body in routes:
        assert getattr(rest, method)(path, body, format="json").status_code == 403
    assert rest.get(f"/websocket/presence/{alice.pk}").status_code == 200


def test_stats_figures(rest, world):
    staff, alice, *_, bam = world
    rest.force_authenticate(staff)
    body = rest.get("/websocket/stats/").data
    assert body["connections"] == 2 and body["connectedUsers"] == 1
    assert body["byStatus"]["away"] == 1
    assert body["rooms"] == {
        f"bam-{bam.pk}": {"sockets": 1, "users": 1, "members": [str(alice.pk)]}
    }
    assert body["processes"][0]["id"] == sio.roster.process_id
    assert body["processes"][0]["connections"] == 2
    assert body["messagesLastMinute"] == 0 and body["messagesLastHour"] == 0


def test_presence_and_online(rest, world):
    staff, alice, bob, outsider, bam = world
    rest.force_authenticate(outsider)
    assert rest.get(f"/websocket/presence/{alice.pk}").status_code == 404
    assert rest.get(f"/websocket/presence/{outsider.pk}").data["status"] == "offline"
    assert rest.get(f"/websocket/bam/{bam.pk}/online").status_code == 404
    rest.force_authenticate(bob)
    presence = rest.get(f"/websocket/presence/{alice.pk}").data
    assert presence["userId"] == str(alice.pk) and presence["status"] == "away"
    assert presence["online"] is True and presence["lastSeen"].endswith("Z")
    assert rest.get(f"/websocket/presence/{bob.pk}").data["status"] == "offline"
    assert rest.get("/websocket/presence/999999").status_code == 404
    assert rest.get("/websocket/presence/xyz").status_code == 404
    online = rest.get(f"/websocket/bam/{bam.pk}/online/").data
    assert online == {"bamId": str(bam.pk), "onlineUsers": [str(alice.pk)]}
    rest.force_authenticate(staff)
    assert rest.get(f"/websocket/bam/{bam.pk}/online").status_code == 200
    assert rest.get("/websocket/bam/999999/online").status_code == 404


def test_notify_and_broadcast_validate_and_publish(rest, world, monkeypatch):
    staff, alice, bob, *_ = world
    rest.force_authenticate(staff)
    sent = []
    monkeypatch.setattr(
        "realtime.bus.bus.send_confirmed",
        lambda group, msg: sent.append((group, msg)) or True,
    )
    assert rest.post("/websocket/notify", {}, format="json").status_code == 400
    bad_event = {"userId": str(alice.pk), "event": "new-message", "data": {}}
    assert rest.post("/websocket/notify", bad_event, format="json").status_code == 400
    unknown = {"userId": "999999", "data": {"x": 1}}
    assert rest.post("/websocket/notify", unknown, format="json").status_code == 400
    ok = rest.post(
        "/websocket/notify", {"userId": str(alice.pk), "data": {"x": 1}}, format="json"
    )
    assert ok.status_code == 200
    assert ok.data == {
        "userId": str(alice.pk),
        "event": "notification",
        "online": True,
        "sockets": 2,
        "sent": True,
    }
    offline = rest.post(
        "/websocket/notify", {"userId": str(bob.pk), "data": {}}, format="json"
    )
    assert offline.data["online"] is False and offline.data["sent"] is False
    assert len(sent) == 1 and sent[0][1]["users"] == [alice.pk]
    bad = {"event": "presence-update", "data": {}}
    assert rest.post("/websocket/broadcast", bad, format="json").status_code == 400
    assert rest.post("/websocket/broadcast", {}, format="json").status_code == 400
    ok = rest.post("/websocket/broadcast", {"data": {"hello": "all"}}, format="json")
    assert ok.status_code == 200 and ok.data["event"] == "broadcast"
    assert sent[-1][1]["event"] == "broadcast"
    assert sent[-1][1]["type"] == "realtime.broadcast"
