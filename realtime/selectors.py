"""Reads on realtime state, the same from every process."""

from datetime import UTC, timedelta

from django.db.models import Count
from django.db.models.functions import TruncMinute
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
    """Ids (strings) of users with a socket in the BAM's room, on any process."""
    ids = (
        RoomMember.objects.filter(bam_id=bam_id)
        .values_list("user_id", flat=True)
        .distinct()
    )
    return sorted({str(i) for i in ids}, key=int)


def user_socket_count(*, user_id: int) -> int:
    """How many live sockets a user has, across processes."""
    return Connection.objects.filter(user_id=user_id).count()


def stats() -> dict:
    """Connection, presence, room and process figures across every process."""
    from messaging.models import Message

    now = timezone.now()
    by_status = dict(
        Presence.objects.values_list("status").annotate(n=Count("user_id"))
    )
    rooms = RoomMember.objects.values("bam_id").annotate(
        sockets=Count("connection_id"), users=Count("user_id", distinct=True)
    )
    members: dict[int, list[str]] = {}
    for bam_id, user_id in (
        RoomMember.objects.values_list("bam_id", "user_id")
        .distinct()
        .order_by("user_id")
    ):
        members.setdefault(bam_id, []).append(str(user_id))
    per_process = ServerProcess.objects.annotate(n=Count("connections")).order_by(
        "started_at"
    )
    return {
        "connections": Connection.objects.count(),
        "connectedUsers": Connection.objects.values("user_id").distinct().count(),
        "byStatus": {s: by_status.get(s, 0) for s in ("online", "away", "busy")},
        "rooms": {
            f"bam-{r['bam_id']}": {
                "sockets": r["sockets"],
                "users": r["users"],
                "members": members.get(r["bam_id"], []),
            }
            for r in rooms
        },
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
        "messagesLastMinute": Message.objects.filter(
            created_at__gte=now - timedelta(minutes=1)
        ).count(),
        "messagesLastHour": Message.objects.filter(
            created_at__gte=now - timedelta(hours=1)
        ).count(),
        "at": iso(now),
    }


def message_payloads_between(*, bam_id: int, after_seq: int, before_seq: int) -> list:
    """Payloads of a BAM's messages with after_seq < seq < before_seq, in order."""
    from messaging.models import Message
    from messaging.serializers import message_payload

    messages = (
        Message.objects.filter(bam_id=bam_id, seq__gt=after_seq, seq__lt=before_seq)
        .select_related("sender")
        .order_by("seq")
    )
    return [message_payload(m) for m in messages]


def messages_per_minute(*, minutes: int = 60) -> list[dict]:
    """Messages stored in each of the last ``minutes`` minutes (the current one last),
    as ``[{minute, count}]`` with empty minutes included."""
    from messaging.models import Message

    current = timezone.now().replace(second=0, microsecond=0)
    first = current - timedelta(minutes=minutes - 1)
    counts = dict(
        Message.objects.filter(created_at__gte=first)
        .annotate(minute=TruncMinute("created_at", tzinfo=UTC))
        .order_by()
        .values_list("minute")
        .annotate(n=Count("id"))
    )
    slots = (first + timedelta(minutes=i) for i in range(minutes))
    return [{"minute": iso(m), "count": counts.get(m, 0)} for m in slots]
