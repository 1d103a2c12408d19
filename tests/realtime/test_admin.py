"""The realtime admin, in process: live connections, read-only lists, dashboard.

Live sockets are in the roster of this (the only) process, not in the database,
so the fixture puts them there the way the server does on connect and join.
"""

from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from bamchat.formats import iso
from messaging.models import Message
from messaging.selectors import messages_per_minute
from push.models import PushDevice, PushSubscription
from push.selectors import device_figures
from realtime import selectors, services
from realtime.bus import GLOBAL_GROUP
from realtime.models import Presence, ServerProcess
from realtime.roster import SocketInfo
from realtime.server import sio
from tests.factories import PASSWORD, BamFactory, UserFactory
from tests.push.test_services import KEYS

pytestmark = pytest.mark.django_db

CONNECTIONS = reverse("admin:realtime_connections")
PRESENCE = reverse("admin:realtime_presence_changelist")
PROCESSES = reverse("admin:realtime_serverprocess_changelist")
DASHBOARD = reverse("admin:realtime_dashboard")
DASHBOARD_DATA = reverse("admin:realtime_dashboard_data")
IDLE_PROCESS = "proc-idle"
# Connection times (POSIX seconds), oldest first: the list shows newest first.
SINCE = {
    "sid-a1": 1_700_000_000.0,
    "sid-a2": 1_700_000_100.0,
    "sid-b1": 1_700_000_200.0,
}


@pytest.fixture
def world(db):
    """This process holds alice's two sockets (one in a BAM room) and bob's one;
    carol has none; a second, idle process has no socket."""
    now = timezone.now()
    alice = UserFactory(username="alice")
    bob = UserFactory(username="bob")
    carol = UserFactory(username="carol")
    bam = BamFactory(owner=alice, members=[bob])
    roster = sio.roster
    assert not roster.local, f"sockets left over by another test: {roster.local}"
    ServerProcess.objects.create(
        id=roster.process_id, host="h1", pid=11, last_heartbeat=now
    )
    ServerProcess.objects.create(id=IDLE_PROCESS, host="h2", pid=22, last_heartbeat=now)
    sockets = [
        SocketInfo("sid-a1", "e-a1", alice.pk, "alice", 0, "websocket", "10.0.0.1"),
        SocketInfo("sid-a2", "e-a2", alice.pk, "alice", 0, "polling", "10.0.0.2"),
        SocketInfo("sid-b1", "e-b1", bob.pk, "bob", 0, "websocket", "192.168.1.9"),
    ]
    for info in sockets:
        info.connected_at = SINCE[info.sid]
        async_to_sync(roster.add)(info)
    async_to_sync(roster.enter)(sockets[0], bam.pk)
    async_to_sync(roster.view.set_status)(alice.pk, "away")
    Presence.objects.create(user=alice, status="away", last_seen=now)
    Presence.objects.create(user=bob, status="online", last_seen=now)
    Presence.objects.create(user=carol, status="offline", last_seen=now)
    yield {"alice": alice, "bob": bob, "carol": carol, "bam": bam}
    for info in sockets:
        async_to_sync(roster.remove)(info.sid)
    for user in (alice, bob):
        async_to_sync(roster.view.offline_if_gone_many)([user.pk])


@pytest.fixture
def published(monkeypatch) -> list[tuple[str, dict]]:
    """Every ``(group, message)`` the bus is asked to send during the test."""
    sent: list[tuple[str, dict]] = []
    monkeypatch.setattr(
        "realtime.bus.bus.send", lambda group, message: sent.append((group, message))
    )
    return sent


def listed(response) -> list:
    """The rows a model changelist response shows."""
    assert response.status_code == 200, response.content[:500]
    return list(response.context["cl"].result_list)


def rows(response) -> list[dict]:
    """The socket rows the Live connections page shows."""
    assert response.status_code == 200, response.content[:500]
    return response.context["rows"]


def sids(response) -> set[str]:
    """The socket ids the Live connections page shows."""
    return {row["sid"] for row in rows(response)}


def staff_client(client, *perms: str):
    """Log ``client`` in as a staff user (not a superuser) holding ``perms``."""
    user = UserFactory(is_staff=True)
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client.force_login(user)
    return client


def disconnect(client, *chosen: str, follow: bool = False):
    """POST the "Disconnect selected sockets" action the way the page's form does."""
    form = {"action": "disconnect_sockets", "_selected_action": list(chosen)}
    return client.post(CONNECTIONS, {**form, "index": "0"}, follow=follow)


# -- lists -----------------------------------------------------------------------------


def test_connections_page_lists_the_roster_newest_first(admin_client, world):
    process = sio.roster.process_id
    response = admin_client.get(CONNECTIONS)
    shown = rows(response)
    assert [row["sid"] for row in shown] == ["sid-b1", "sid-a2", "sid-a1"]
    a1 = shown[-1]
    assert (a1["user"], a1["username"]) == (world["alice"].pk, "alice")
    assert (a1["transport"], a1["address"], a1["process"]) == (
        "websocket",
        "10.0.0.1",
        process,
    )
    assert a1["bams"] == [world["bam"].pk] and shown[0]["bams"] == []
    assert a1["connected_at"] == datetime.fromtimestamp(SINCE["sid-a1"], UTC)

    page = response.content.decode()
    for text in ("sid-a2", "192.168.1.9", process, "polling", f"bam-{world['bam'].pk}"):
        assert text in page, f"{text!r} is not on the Live connections page"
    assert "3 live sockets" in page

    # A socket the process forgets leaves the list at the next load.
    async_to_sync(sio.roster.remove)("sid-a2")
    assert sids(admin_client.get(CONNECTIONS)) == {"sid-a1", "sid-b1"}


def test_connections_search(admin_client, world):
    def found(query: str) -> set[str]:
        response = admin_client.get(CONNECTIONS, {"q": query})
        assert response.context["query"] == query.strip()
        return sids(response)

    assert found("ALICE") == {"sid-a1", "sid-a2"}, "search by username"
    assert found("sid-b1") == {"sid-b1"}, "search by sid"
    assert found("192.168") == {"sid-b1"}, "search by address"
    assert found("polling") == {"sid-a2"}, "search by transport"
    assert found(f" {sio.roster.process_id} ") == {"sid-a1", "sid-a2", "sid-b1"}
    assert found(IDLE_PROCESS) == set()
    empty = admin_client.get(CONNECTIONS, {"q": "nobody"})
    assert sids(empty) == set()
    assert "No live socket matches “nobody”" in empty.content.decode()


def test_model_lists_count_live_sockets(admin_client, world):
    presence = {p.user.username: p for p in listed(admin_client.get(PRESENCE))}
    page = admin_client.get(PRESENCE)
    counts = {
        name: page.context["cl"].model_admin.sockets(p) for name, p in presence.items()
    }
    assert counts == {"alice": 2, "bob": 1, "carol": 0}
    assert presence["alice"].status == "away"

    processes = admin_client.get(PROCESSES)
    admin = processes.context["cl"].model_admin
    assert {p.id: admin.connections(p) for p in listed(processes)} == {
        sio.roster.process_id: 3,
        IDLE_PROCESS: 0,
    }
    html = processes.content.decode()
    assert DASHBOARD in html, "the process list does not link to the dashboard"


def test_presence_filter_by_status(admin_client, world):
    away = listed(admin_client.get(PRESENCE, {"status__exact": "away"}))
    assert [p.user.username for p in away] == ["alice"]
    offline = listed(admin_client.get(PRESENCE, {"status__exact": "offline"}))
    assert [p.user.username for p in offline] == ["carol"]


def test_rows_are_read_only(admin_client, world):
    alice = world["alice"]
    for model, pk in (("presence", alice.pk), ("serverprocess", IDLE_PROCESS)):
        add = reverse(f"admin:realtime_{model}_add")
        change = reverse(f"admin:realtime_{model}_change", args=[pk])
        delete = reverse(f"admin:realtime_{model}_delete", args=[pk])
        assert admin_client.get(add).status_code == 403, f"{model} can be added"
        view = admin_client.get(change)
        assert view.status_code == 200 and not view.context["has_change_permission"]
        assert admin_client.post(change, {}).status_code == 403, f"{model} changed"
        assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert Presence.objects.count() == 3 and ServerProcess.objects.count() == 2
    assert Presence.objects.get(user=alice).status == "away"


def test_connections_page_needs_view_serverprocess(client, world):
    response = client.get(CONNECTIONS)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))

    client.login(username="alice", password=PASSWORD)
    response = client.get(CONNECTIONS)
    assert response.status_code == 302, "a non-staff user reached live connections"

    assert staff_client(client).get(CONNECTIONS).status_code == 403
    viewer = staff_client(client, "view_serverprocess")
    assert sids(viewer.get(CONNECTIONS)) == {"sid-a1", "sid-a2", "sid-b1"}


# -- disconnecting ---------------------------------------------------------------------


def test_disconnect_publishes_one_message_with_the_chosen_sockets(
    admin_client, world, published
):
    response = disconnect(admin_client, "sid-b1", "sid-a1")
    assert response.status_code == 302, response.content[:500]
    assert response["Location"] == CONNECTIONS
    assert published == [
        (
            GLOBAL_GROUP,
            {"type": "realtime.sockets_disconnect", "sids": ["sid-a1", "sid-b1"]},
        )
    ]

    page = admin_client.get(response["Location"])
    notes = [str(m) for m in page.context["messages"]]
    assert any("disconnect 2 sockets" in n for n in notes), notes
    # The processes holding the sockets drop them from the roster when they close.
    assert sids(page) == {"sid-a1", "sid-a2", "sid-b1"}


def test_disconnect_needs_the_disconnect_socket_permission(client, world, published):
    viewer = staff_client(client, "view_serverprocess")
    page = viewer.get(CONNECTIONS)
    assert sids(page) == {"sid-a1", "sid-a2", "sid-b1"}
    assert page.context["can_disconnect"] is False
    html = page.content.decode()
    assert 'name="action"' not in html and 'name="index"' not in html
    response = disconnect(viewer, "sid-a1", follow=True)
    assert published == [], "a staff user without the permission disconnected"
    notes = [str(m) for m in response.context["messages"]]
    assert notes == ["You may not disconnect sockets."], notes

    operator = staff_client(client, "view_serverprocess", "disconnect_socket")
    page = operator.get(CONNECTIONS)
    assert page.context["can_disconnect"] is True
    assert 'value="disconnect_sockets"' in page.content.decode()
    disconnect(operator, "sid-a1")
    assert [message["sids"] for _, message in published] == [["sid-a1"]]


def test_disconnect_without_sockets_or_action_publishes_nothing(
    admin_client, world, published
):
    response = disconnect(admin_client, follow=True)
    notes = [str(m) for m in response.context["messages"]]
    assert notes == ["Select sockets and an action first."], notes
    form = {"action": "", "_selected_action": ["sid-a1"], "index": "0"}
    assert admin_client.post(CONNECTIONS, form).status_code == 302
    assert published == []


def test_disconnect_skips_unknown_sockets(admin_client, world, published):
    assert services.connections_disconnect(sids=["gone", "also-gone"]) == 0
    assert published == [], "a disconnect was published for no live socket"
    assert services.connections_disconnect(sids=["gone", "sid-a2"]) == 1
    assert [message["sids"] for _, message in published] == [["sid-a2"]]

    response = disconnect(admin_client, "gone", "sid-b1", follow=True)
    assert [message["sids"] for _, message in published[1:]] == [["sid-b1"]]
    notes = [str(m) for m in response.context["messages"]]
    assert any("disconnect 1 socket;" in n for n in notes), notes


# -- dashboard -------------------------------------------------------------------------


def test_dashboard_is_for_staff_only(client, world):
    login = reverse("admin:login")
    response = client.get(DASHBOARD)
    assert response.status_code == 302 and response["Location"].startswith(login)
    assert client.get(DASHBOARD_DATA).status_code == 403

    client.login(username="alice", password=PASSWORD)
    response = client.get(DASHBOARD)
    assert response.status_code == 302 and response["Location"].startswith(login)
    denied = client.get(DASHBOARD_DATA)
    assert denied.status_code == 403 and "detail" in denied.json()

    staff = staff_client(client)
    page = staff.get(DASHBOARD)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="rt-connections">3<' in html and f"bam-{world['bam'].pk}" in html
    assert DASHBOARD_DATA in html, "the page does not poll its JSON endpoint"
    assert staff.get(DASHBOARD_DATA).status_code == 200
    assert staff.post(DASHBOARD_DATA).status_code == 405
    index = staff.get(reverse("admin:index")).content.decode()
    assert DASHBOARD in index, "the admin home does not link to the dashboard"
    assert CONNECTIONS in index, "the admin home does not link to live connections"
    viewer = staff_client(client, "view_serverprocess")
    app_page = viewer.get(reverse("admin:app_list", args=["realtime"]))
    app_html = app_page.content.decode()
    assert DASHBOARD in app_html and CONNECTIONS in app_html, "the Realtime app page"


def test_dashboard_data_has_the_stats_figures_and_a_per_minute_series(
    admin_client, world, monkeypatch
):
    now = timezone.now().replace(second=30, microsecond=0)
    monkeypatch.setattr("django.utils.timezone.now", lambda: now)
    alice, bam = world["alice"], world["bam"]
    ages = {"now-a": 0, "now-b": 0, "5min": 5, "59min": 59, "60min": 60, "2h": 120}
    for seq, (content, minutes) in enumerate(ages.items(), start=1):
        message = Message.objects.create(
            bam=bam, sender=alice, content=content, seq=seq
        )
        Message.objects.filter(pk=message.pk).update(
            created_at=now - timedelta(minutes=minutes, seconds=seq)
        )

    response = admin_client.get(DASHBOARD_DATA)
    assert response.status_code == 200 and response["Cache-Control"]
    data = response.json()
    expected = selectors.stats()
    for key in ("connections", "connectedUsers", "byStatus", "rooms", "processes"):
        assert data[key] == expected[key], key
    assert data["connections"] == 3 and data["connectedUsers"] == 2
    assert data["byStatus"] == {"online": 1, "away": 1, "busy": 0}
    assert data["rooms"] == {
        f"bam-{bam.pk}": {"sockets": 1, "users": 1, "members": [str(alice.pk)]}
    }
    assert [(p["id"], p["connections"]) for p in data["processes"]] == [
        (sio.roster.process_id, 3),
        (IDLE_PROCESS, 0),
    ]
    assert data["messagesLastMinute"] == 2 and data["messagesLastHour"] == 4

    series = data["messagesPerMinute"]
    assert len(series) == 60
    minute = now.replace(second=0)
    assert series[-1]["minute"] == iso(minute)
    assert series[0]["minute"] == iso(minute - timedelta(minutes=59))
    counts = {
        59 - i: point["count"] for i, point in enumerate(series) if point["count"]
    }
    # "59min" (59 min 4 s old) opens the window; "60min" (60 min 5 s) is before it.
    assert counts == {0: 2, 5: 1, 59: 1}, series


def push_devices(world) -> None:
    """Alice has a browser and an Android phone, Bob an iPhone and an Android
    phone, Carol a browser."""
    alice, bob, carol = world["alice"], world["bob"], world["carol"]
    for n, user in enumerate((alice, carol)):
        PushSubscription.objects.create(
            user=user, endpoint=f"https://fcm.googleapis.com/fcm/send/{n}", **KEYS
        )
    for n, (user, platform) in enumerate(((alice, "fcm"), (bob, "apns"), (bob, "fcm"))):
        PushDevice.objects.create(user=user, platform=platform, token=f"{n:064x}")


def test_dashboard_counts_push_devices_by_platform(admin_client, world):
    data = admin_client.get(DASHBOARD_DATA).json()
    assert data["pushDevices"] == {"web": 0, "fcm": 0, "apns": 0}

    push_devices(world)
    data = admin_client.get(DASHBOARD_DATA).json()
    assert data["pushDevices"] == {"web": 2, "fcm": 2, "apns": 1}
    html = admin_client.get(DASHBOARD).content.decode()
    for platform, count in data["pushDevices"].items():
        figure = f'id="rt-push-devices-{platform}">{count}<'
        assert figure in html, f"the page does not show {platform} devices"

    # A device that moves to another user is still one device.
    PushDevice.objects.filter(platform="apns").update(user=world["carol"])
    PushSubscription.objects.filter(user=world["carol"]).delete()
    data = admin_client.get(DASHBOARD_DATA).json()
    assert data["pushDevices"] == {"web": 1, "fcm": 2, "apns": 1}


def test_push_devices_by_platform_is_one_query(world, django_assert_num_queries):
    push_devices(world)
    with django_assert_num_queries(1):
        figures = device_figures()
    assert figures == {"web": 2, "fcm": 2, "apns": 1}


def test_messages_per_minute_is_one_query(world, django_assert_num_queries):
    with django_assert_num_queries(1):
        series = messages_per_minute(minutes=15)
    assert len(series) == 15 and all(p["count"] == 0 for p in series)
