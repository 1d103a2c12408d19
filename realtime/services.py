"""Writes on the database's realtime records: server processes and presence.

Sockets and rooms are not here: they live in each process's memory and the
cluster view (``realtime.roster``, ``realtime.cluster``), so connecting,
joining, leaving and disconnecting cost no database transaction.
"""

import logging
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from realtime import bus
from realtime.models import Presence, ServerProcess

logger = logging.getLogger(__name__)


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


def process_forget(*, process_id: str) -> None:
    """Remove this process's record (a clean stop)."""
    ServerProcess.objects.filter(id=process_id).delete()


def processes_reap(*, dead_after_s: float, exclude_id: str) -> list[str]:
    """Remove processes silent for ``dead_after_s``; returns the ids this caller
    reaped (one survivor wins each), whose sockets it must then forget."""
    cutoff = timezone.now() - timedelta(seconds=dead_after_s)
    candidates = list(
        ServerProcess.objects.filter(last_heartbeat__lt=cutoff)
        .exclude(id=exclude_id)
        .values_list("id", flat=True)
    )
    reaped = []
    for process_id in candidates:
        deleted, _ = ServerProcess.objects.filter(
            id=process_id, last_heartbeat__lt=cutoff
        ).delete()
        if deleted:
            reaped.append(process_id)
            logger.warning("Reaped dead server process %s", process_id)
    return reaped


@transaction.atomic
def presence_record(*, changes: dict[int, tuple[str, object]]) -> None:
    """Store users' latest statuses and last-seen times, gathered by a process."""
    rows = [
        Presence(user_id=user_id, status=status, last_seen=at)
        for user_id, (status, at) in changes.items()
    ]
    existing = set(
        get_user_model()
        .objects.filter(pk__in=list(changes))
        .values_list("pk", flat=True)
    )
    Presence.objects.bulk_create(
        [row for row in rows if row.user_id in existing],
        update_conflicts=True,
        unique_fields=["user"],
        update_fields=["status", "last_seen", "updated_at"],
    )


def connections_disconnect(*, sids: list[str]) -> int:
    """Ask whichever process holds these sockets to disconnect them; returns how
    many of them are live."""
    from realtime.selectors import connections

    live = sorted({record["sid"] for record in connections()} & set(sids))
    if live:
        bus.sockets_disconnect(sids=live)
        logger.info("Disconnect requested for %d socket(s)", len(live))
    return len(live)
