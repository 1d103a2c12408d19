"""Writes on realtime state: connections, rooms, presence and server processes.

Each function runs in one transaction and announces its effect after commit
through ``realtime.events``.
"""

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from bamchat.errors import Invalid
from messaging.selectors import co_participant_ids
from realtime import events
from realtime.models import Connection, Presence, RoomMember, ServerProcess

logger = logging.getLogger(__name__)

CHOOSABLE_STATUSES = ("online", "away", "busy")


def _presence_locked(user_id: int) -> Presence:
    presence, _ = Presence.objects.get_or_create(user_id=user_id)
    return Presence.objects.select_for_update().get(pk=presence.pk)


def _announce(presence: Presence) -> None:
    audience = co_participant_ids(user_id=presence.user_id)
    transaction.on_commit(
        lambda: events.presence_publish(
            user_id=presence.user_id,
            status=presence.status,
            last_seen=presence.last_seen,
            audience=audience,
        )
    )


@transaction.atomic
def connection_open(
    *, sid: str, user_id: int, process_id: str, transport: str, client_address: str
) -> Connection:
    """Record a new socket; an offline user becomes online and that is announced."""
    presence = _presence_locked(user_id)
    connection = Connection.objects.create(
        sid=sid,
        user_id=user_id,
        process_id=process_id,
        transport=transport
        if transport in Connection.Transport.values
        else Connection.Transport.POLLING,
        client_address=client_address[:64],
    )
    if presence.status == Presence.Status.OFFLINE:
        presence.status = Presence.Status.ONLINE
        presence.last_seen = timezone.now()
        presence.save(update_fields=["status", "last_seen", "updated_at"])
        _announce(presence)
    return connection


def _forget_sockets(user_id: int, sids: list[str]) -> bool:
    """Delete the sockets; with none left the user goes offline (returns True)."""
    presence = _presence_locked(user_id)
    Connection.objects.filter(sid__in=sids).delete()
    if Connection.objects.filter(user_id=user_id).exists():
        return False
    if presence.status != Presence.Status.OFFLINE:
        presence.status = Presence.Status.OFFLINE
        presence.last_seen = timezone.now()
        presence.save(update_fields=["status", "last_seen", "updated_at"])
        _announce(presence)
    return True


@transaction.atomic
def connection_close(*, sid: str, user_id: int) -> bool:
    """Forget a socket; after the user's last they go offline (returns True)."""
    return _forget_sockets(user_id, [sid])


@transaction.atomic
def connection_set_transport(*, sid: str, transport: str) -> None:
    """Record the transport a socket upgraded to."""
    Connection.objects.filter(sid=sid).update(
        transport=transport, last_seen=timezone.now()
    )


@transaction.atomic
def presence_set_status(*, user_id: int, status) -> Presence:
    """Set a connected user's chosen status and announce it."""
    if isinstance(status, dict):
        status = status.get("status")
    if not isinstance(status, str) or status not in CHOOSABLE_STATUSES:
        raise Invalid(
            f"status must be one of: {', '.join(CHOOSABLE_STATUSES)}.",
            fields={"status": ["Unknown status."]},
        )
    presence = _presence_locked(user_id)
    if presence.status != status:
        presence.status = status
        presence.last_seen = timezone.now()
        presence.save(update_fields=["status", "last_seen", "updated_at"])
        _announce(presence)
    return presence


@transaction.atomic
def room_join(*, sid: str, user_id: int, bam_id: int) -> bool:
    """Record that a socket is in a BAM's room. True if it was not already."""
    if not Connection.objects.filter(sid=sid).exists():
        return False
    _, created = RoomMember.objects.get_or_create(
        connection_id=sid, bam_id=bam_id, defaults={"user_id": user_id}
    )
    return created


@transaction.atomic
def room_leave(*, sid: str, bam_id: int) -> bool:
    """Forget that a socket is in a BAM's room. True if it was."""
    deleted, _ = RoomMember.objects.filter(connection_id=sid, bam_id=bam_id).delete()
    return bool(deleted)


@transaction.atomic
def process_register(*, process_id: str, host: str, pid: int) -> ServerProcess:
    """Record this server process as alive."""
    process, _ = ServerProcess.objects.update_or_create(
        id=process_id,
        defaults={"host": host, "pid": pid, "last_heartbeat": timezone.now()},
    )
    return process


def process_heartbeat(*, process_id: str, host: str, pid: int) -> None:
    """Say this process is still alive (re-registering it if it was reaped)."""
    updated = ServerProcess.objects.filter(id=process_id).update(
        last_heartbeat=timezone.now()
    )
    if not updated:
        process_register(process_id=process_id, host=host, pid=pid)


def processes_reap(*, dead_after_s: int, exclude_id: str) -> list[str]:
    """Remove processes silent for ``dead_after_s`` with their sockets; users left
    without sockets go offline. Returns the ids reaped."""
    cutoff = timezone.now() - timedelta(seconds=dead_after_s)
    dead = list(
        ServerProcess.objects.filter(last_heartbeat__lt=cutoff)
        .exclude(id=exclude_id)
        .values_list("id", flat=True)
    )
    for process_id in dead:
        with transaction.atomic():
            # Lock the process row: only one survivor reaps it.
            row = (
                ServerProcess.objects.select_for_update()
                .filter(id=process_id, last_heartbeat__lt=cutoff)
                .first()
            )
            if row is None:
                continue
            by_user: dict[int, list[str]] = {}
            for sid, user_id in Connection.objects.filter(
                process_id=process_id
            ).values_list("sid", "user_id"):
                by_user.setdefault(user_id, []).append(sid)
            for user_id, sids in by_user.items():
                _forget_sockets(user_id, sids)
            row.delete()
        logger.warning(
            "Reaped dead server process %s (%d sockets)",
            process_id,
            sum(map(len, by_user.values())),
        )
    return dead


@transaction.atomic
def process_unregister(*, process_id: str) -> None:
    """Forget this process and its sockets on a clean shutdown."""
    by_user: dict[int, list[str]] = {}
    for sid, user_id in Connection.objects.filter(process_id=process_id).values_list(
        "sid", "user_id"
    ):
        by_user.setdefault(user_id, []).append(sid)
    for user_id, sids in by_user.items():
        _forget_sockets(user_id, sids)
    ServerProcess.objects.filter(id=process_id).delete()


@transaction.atomic
def connections_disconnect(*, sids: list[str]) -> int:
    """Ask whichever process holds these sockets to disconnect them; returns how many
    of them are recorded as live."""
    live = list(Connection.objects.filter(sid__in=sids).values_list("sid", flat=True))
    if live:
        transaction.on_commit(lambda: events.sockets_disconnect(sids=live))
        logger.info("Disconnect requested for %d socket(s)", len(live))
    return len(live)
