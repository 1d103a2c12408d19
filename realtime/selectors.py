"""Reads on realtime state, the same from every process (the cluster view)."""

from django.utils import timezone

from bamchat.formats import iso
from messaging.selectors import message_counts_since
from realtime.models import Presence, ServerProcess


def _view():
    from realtime.server import sio

    return sio.roster.view


def presence_get(*, user_id: int) -> dict:
    """``{status, online, lastSeen}`` of one user."""
    status = _view().status_now(user_id)
    row = Presence.objects.filter(user_id=user_id).only("last_seen").first()
    last_seen = iso(row.last_seen) if row else None
    return {
        "status": status or Presence.Status.OFFLINE.value,
        "online": status is not None,
        "lastSeen": last_seen,
    }


def online_user_ids_in_bam(*, bam_id: int) -> list[str]:
    """Ids (strings) of users with a socket in the BAM's room, on any process."""
    return [str(u) for u in _view().room_users_now(bam_id)]


def user_socket_count(*, user_id: int) -> int:
    """How many live sockets a user has, across processes."""
    return _view().user_sockets_now(user_id)


def connections() -> list[dict]:
    """Every live socket on every process, newest first."""
    return sorted(_view().sockets_now(), key=lambda s: s["since"], reverse=True)


def process_socket_counts() -> dict[str, int]:
    """How many live sockets each process holds."""
    counts: dict[str, int] = {}
    for record in _view().sockets_now():
        counts[record["process"]] = counts.get(record["process"], 0) + 1
    return counts


def stats() -> dict:
    """Connection, presence, room and process figures across every process."""
    now = timezone.now()
    sockets = connections()
    statuses = _view().statuses_now()
    rooms: dict[int, dict] = {}
    for record in sockets:
        for bam_id in record["bams"]:
            room = rooms.setdefault(bam_id, {"sockets": 0, "members": set()})
            room["sockets"] += 1
            room["members"].add(record["user"])
    per_process = process_socket_counts()
    return {
        "connections": len(sockets),
        "connectedUsers": len({record["user"] for record in sockets}),
        "byStatus": {
            s: sum(1 for v in statuses.values() if v == s)
            for s in Presence.Status.live()
        },
        "rooms": {
            f"bam-{bam_id}": {
                "sockets": room["sockets"],
                "users": len(room["members"]),
                "members": [str(u) for u in sorted(room["members"])],
            }
            for bam_id, room in sorted(rooms.items())
        },
        "processes": [
            {
                "id": p.id,
                "host": p.host,
                "pid": p.pid,
                "startedAt": iso(p.started_at),
                "lastHeartbeat": iso(p.last_heartbeat),
                "connections": per_process.get(p.id, 0),
            }
            for p in ServerProcess.objects.order_by("started_at")
        ],
        **message_counts_since(now=now),
        "at": iso(now),
    }
