"""The realtime admin, in process: read-only lists, disconnect action, dashboard."""

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from messaging.models import Message
from realtime import selectors, services
from realtime.events import GLOBAL_GROUP
from realtime.models import Connection, Presence, RoomMember, ServerProcess
from tests.factories import PASSWORD, BamFactory, UserFactory

pytestmark = pytest.mark.django_db

CONNECTIONS = reverse("admin:realtime_connection_changelist")
PRESENCE = reverse("admin:realtime_presence_changelist")
PROCESSES = reverse("admin:realtime_serverprocess_changelist")
DASHBOARD = reverse("admin:realtime_dashboard")
DASHBOARD_DATA = reverse("admin:realtime_dashboard_data")


@pytest.fixture
def world(db):
    """Two processes; alice has two sockets (one in a BAM room), bob one, carol none."""
    now = timezone.now()
    alice = UserFactory(username="alice")
    bob = UserFactory(username="bob")
    carol = UserFactory(username="carol")
    bam = BamFactory(owner=alice, members=[bob])
    p1 = ServerProcess.objects.create(
        id="proc-1", host="h1", pid=11, last_heartbeat=now
    )
    p2 = ServerProcess.objects.create(
        id="proc-2", host="h2", pid=22, last_heartbeat=now
    )
    a1 = Connection.objects.create(
        sid="sid-a1",
        user=alice,
        process=p1,
        transport="websocket",
        client_address="10.0.0.1",
    )
    Connection.objects.create(
        sid="sid-a2",
        user=alice,
        process=p2,
        transport="polling",
        client_address="10.0.0.2",
    )
    Connection.objects.create(
        sid="sid-b1",
        user=bob,
        process=p2,
        transport="websocket",
        client_address="192.168.1.9",
    )
    RoomMember.objects.create(connection=a1, bam=bam, user=alice)
    Presence.objects.create(user=alice, status="away", last_seen=now)
    Presence.objects.create(user=bob, status="online", last_seen=now)
    Presence.objects.create(user=carol, status="offline", last_seen=now)
    return {"alice": alice, "bob": bob, "carol": carol, "bam": bam}


def listed(response) -> list:
    """The rows a changelist response shows."""
    assert response.status_code == 200, response.content[:500]
    return list(response.context["cl"].result_list)


def sids(response) -> set[str]:
    """The socket ids a Connection changelist response shows."""
    return {c.sid for c in listed(response)}


@pytest.fixture
def realtime_group():
    """A channel in the group every server process listens on; yields its drain."""
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(GLOBAL_GROUP, channel)

    def drain() -> list[dict]:
        async def take():
            got = []
            while True:
                try:
                    got.append(await asyncio.wait_for(layer.receive(channel), 0.05))
                except TimeoutError:
                    return got

        return async_to_sync(take)()

    yield drain
    async_to_sync(layer.group_discard)(GLOBAL_GROUP, channel)


def staff_client(client, *perms: str):
    """Log ``client`` in as a staff user (not a superuser) holding ``perms``."""
    user = UserFactory(is_staff=True)
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client.force_login(user)
    return client


# -- lists -----------------------------------------------------------------------------


def test_changelists_show_live_state_with_counts(admin_client, world):
    assert sids(admin_client.get(CONNECTIONS)) == {"sid-a1", "sid-a2", "sid-b1"}
    page = admin_client.get(CONNECTIONS).content.decode()
    for text in ("alice", "proc-1", "10.0.0.1", "HTTP long-polling"):
        assert text in page

    presence = {p.user.username: p for p in listed(admin_client.get(PRESENCE))}
    assert {name: p.socket_count for name, p in presence.items()} == {
        "alice": 2,
        "bob": 1,
        "carol": 0,
    }
    assert presence["alice"].status == "away"

    processes = {p.id: p.connection_count for p in listed(admin_client.get(PROCESSES))}
    assert processes == {"proc-1": 1, "proc-2": 2}
    page = admin_client.get(PROCESSES).content.decode()
    assert DASHBOARD in page, "the process list does not link to the dashboard"


def test_connection_search_and_filters(admin_client, world):
    assert sids(admin_client.get(CONNECTIONS, {"q": "alice"})) == {"sid-a1", "sid-a2"}
    assert sids(admin_client.get(CONNECTIONS, {"q": "sid-b1"})) == {"sid-b1"}
    assert sids(admin_client.get(CONNECTIONS, {"q": "192.168"})) == {"sid-b1"}
    assert sids(admin_client.get(CONNECTIONS, {"q": "nobody"})) == set()
    polling = admin_client.get(CONNECTIONS, {"transport__exact": "polling"})
    assert sids(polling) == {"sid-a2"}
    on_p2 = admin_client.get(CONNECTIONS, {"process__id__exact": "proc-2"})
    assert sids(on_p2) == {"sid-a2", "sid-b1"}


def test_presence_filter_by_status(admin_client, world):
    away = listed(admin_client.get(PRESENCE, {"status__exact": "away"}))
    assert [p.user.username for p in away] == ["alice"]
    offline = listed(admin_client.get(PRESENCE, {"status__exact": "offline"}))
    assert [p.user.username for p in offline] == ["carol"]


def test_rows_are_read_only(admin_client, world):
    alice = world["alice"]
    for model, pk in (
        ("connection", "sid-a1"),
        ("presence", alice.pk),
        ("serverprocess", "proc-1"),
    ):
        add = reverse(f"admin:realtime_{model}_add")
        change = reverse(f"admin:realtime_{model}_change", args=[pk])
        delete = reverse(f"admin:realtime_{model}_delete", args=[pk])
        assert admin_client.get(add).status_code == 403, f"{model} can be added"
        view = admin_client.get(change)
        assert view.status_code == 200 and not view.context["has_change_permission"]
        assert admin_client.post(change, {}).status_code == 403, f"{model} changed"
        assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert Connection.objects.count() == 3 and ServerProcess.objects.count() == 2
    actions = admin_client.get(CONNECTIONS).context["action_form"].fields["action"]
    assert [name for name, _ in actions.choices if name] == ["disconnect_sockets"]


# -- disconnecting ---------------------------------------------------------------------


def test_disconnect_action_publishes_once_after_commit(
    admin_client, world, realtime_group, django_capture_on_commit_callbacks
):
    form = {"action": "disconnect_sockets", "_selected_action": ["sid-a1", "sid-b1"]}
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post(CONNECTIONS, {**form, "index": "0"})
    assert response.status_code == 302, response.content[:500]
    assert len(callbacks) == 1, "the disconnect was not deferred to commit exactly once"
    assert realtime_group() == [], "the disconnect left before the commit"

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(CONNECTIONS, {**form, "index": "0"}, follow=True)
    published = realtime_group()
    assert len(published) == 1, published
    message = published[0]
    assert message["method"] == "disconnect_sids"
    assert sorted(message["sids"]) == ["sid-a1", "sid-b1"]
    notes = [str(m) for m in response.context["messages"]]
    assert any("disconnect 2 sockets" in n for n in notes), notes
    # The processes holding the sockets delete the rows when they close them.
    assert Connection.objects.count() == 3


def test_disconnect_needs_the_delete_connection_permission(
    client, world, realtime_group, django_capture_on_commit_callbacks
):
    viewer = staff_client(client, "view_connection")
    assert sids(viewer.get(CONNECTIONS)) == {"sid-a1", "sid-a2", "sid-b1"}
    assert viewer.get(CONNECTIONS).context["action_form"] is None
    form = {"action": "disconnect_sockets", "_selected_action": ["sid-a1"]}
    with django_capture_on_commit_callbacks(execute=True):
        viewer.post(CONNECTIONS, {**form, "index": "0"})
    assert realtime_group() == [], "a staff user without the permission disconnected"

    operator = staff_client(client, "view_connection", "delete_connection")
    with django_capture_on_commit_callbacks(execute=True):
        operator.post(CONNECTIONS, {**form, "index": "0"})
    assert [m["sids"] for m in realtime_group()] == [["sid-a1"]]


def test_connections_disconnect_service_skips_unknown_sockets(
    world, realtime_group, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert services.connections_disconnect(sids=["gone", "also-gone"]) == 0
    assert callbacks == [] and realtime_group() == []
    with django_capture_on_commit_callbacks(execute=True):
        assert services.connections_disconnect(sids=["gone", "sid-a2"]) == 1
    assert [m["sids"] for m in realtime_group()] == [["sid-a2"]]


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
    assert 'id="rt-connections">3<' in html and "bam-" in html
    assert DASHBOARD_DATA in html, "the page does not poll its JSON endpoint"
    assert staff.get(DASHBOARD_DATA).status_code == 200
    assert staff.post(DASHBOARD_DATA).status_code == 405
    index = staff.get(reverse("admin:index")).content.decode()
    assert DASHBOARD in index, "the admin home does not link to the dashboard"
    viewer = staff_client(client, "view_serverprocess")
    app_page = viewer.get(reverse("admin:app_list", args=["realtime"]))
    assert DASHBOARD in app_page.content.decode(), "the Realtime app page has no link"


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
    room = data["rooms"][f"bam-{bam.pk}"]
    assert room["sockets"] == 1 and room["users"] == 1 and len(room["members"]) == 1
    assert [p["connections"] for p in data["processes"]] == [1, 2]
    assert data["messagesLastMinute"] == 2 and data["messagesLastHour"] == 4

    series = data["messagesPerMinute"]
    assert len(series) == 60
    minute = now.replace(second=0)
    assert series[-1]["minute"] == selectors.iso(minute)
    assert series[0]["minute"] == selectors.iso(minute - timedelta(minutes=59))
    counts = {
        59 - i: point["count"] for i, point in enumerate(series) if point["count"]
    }
    # "59min" (59 min 4 s old) opens the window; "60min" (60 min 5 s) is before it.
    assert counts == {0: 2, 5: 1, 59: 1}, series


def test_messages_per_minute_is_one_query(world, django_assert_num_queries):
    with django_assert_num_queries(1):
        series = selectors.messages_per_minute(minutes=15)
    assert len(series) == 15 and all(p["count"] == 0 for p in series)
