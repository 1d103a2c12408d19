"""Reads on realtime state, the same from every process."""

from datetime import timedelta

from django.db.models import Count
from django.utils import timezone

from realtime.models import Connection, Presence, RoomMember, ServerProcess


def iso(value) -> str | None:
    """ISO 8601 UTC with a Z, as in every payload."""
    return value.isoformat().replace("+00:00", "Z") if value else None


def presence_get(*, user_id: int) -> dict:
    """``{status, online, lastSeen}`` of one user."""
    presence = Presence.objects.filter(user_id=user_id).first()
    status = presence.status if presence else Presence.Status.OFFLINE
    return {
        "status": status,
        "online": status != Presence.Status.OFFLINE,
        "lastSeen": iso(presence.last_seen) if presence else None,
    }


def online_user_ids_in_bam(*, bam_id: int) -> list[str]:
    """Ids (strings) of users with at least one socket in the BAM's room, on any process."""
    ids = RoomMember.objects.filter(bam_id=bam_id).values_list("user_id", flat=True).distinct()
    return sorted({str(i) for i in ids}, key=int)


def user_socket_count(*, user_id: int) -> int:
    """How many live sockets a user has, across processes."""
    return Connection.objects.filter(user_id=user_id).count()


def stats() -> dict:
    """Connection, presence, room and process figures across every process."""
    from messaging.models import Message

    now = timezone.now()
    by_status = dict(Presence.objects.values_list("status").annotate(n=Count("user_id")))
    rooms = (
        RoomMember.objects.values("bam_id").annotate(sockets=Count("connection_id"), users=Count("user_id", distinct=True))
    )
    per_process = ServerProcess.objects.annotate(n=Count("connections")).order_by("started_at")
    return {
        "connections": Connection.objects.count(),
        "connectedUsers": Connection.objects.values("user_id").distinct().count(),
        "byStatus": {s: by_status.get(s, 0) for s in ("online", "away", "busy")},
        "rooms": {f"bam-{r['bam_id']}": {"sockets": r["sockets"], "users": r["users"]} for r in rooms},
        "processes": [
            {
                "id": p.id,
                "host": p.host,
                "pid": p.pid,
                "startedAt": iso(p.started_at),
                "lastHeartbeat": iso(p.last_heartbeat),
                "connections": p.n,
            }
            for p in per_process
        ],
        "messagesLastMinute": Message.objects.filter(created_at__gte=now - timedelta(minutes=1)).count(),
        "messagesLastHour": Message.objects.filter(created_at__gte=now - timedelta(hours=1)).count(),
        "at": iso(now),
    }
