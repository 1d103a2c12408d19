"""Presence across processes: online with a first socket, offline after the last.

A user whose last socket goes is checked again after a short grace (a reload
or a hop to another process does not flap them offline); the check is also
noted in the cluster view, so a survivor makes it if this process dies first.
Announcements are sent in batches: whatever waits when the previous batch is
out shares one query for its audiences (a connect storm or a stop announces
thousands of users at once). Statuses and last-seen times are written to the
database behind, in batches too.
"""

import asyncio
import logging
import time

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

from bamchat.errors import invalid
from bamchat.formats import iso
from messaging.statements import co_participants_of
from realtime import bus, services
from realtime.models import Presence as PresenceRow

logger = logging.getLogger(__name__)

CHOOSABLE_STATUSES = PresenceRow.Status.live()
ONLINE, OFFLINE = PresenceRow.Status.ONLINE.value, PresenceRow.Status.OFFLINE.value
# Database writes of presence are gathered for this long (seconds).
RECORD_EVERY_S = 1.0


class PresenceKeeper:
    """Decides and announces presence changes for this process's users."""

    def __init__(self, roster) -> None:
        self.roster = roster
        self._pending: dict[int, tuple[str, object]] = {}
        self._outbox: list[tuple[int, str, object]] = []  # announcements to send
        self._sending: asyncio.Task | None = None

    @property
    def grace_s(self) -> float:
        return settings.REALTIME["PRESENCE_GRACE_S"]

    async def connected(self, info) -> None:
        """A socket was added to the roster; announce the user if newly online."""
        if await self.roster.add(info):
            self._announce(info.user_id, ONLINE)

    async def disconnected(self, sid: str, *, check_later: bool = True):
        """Forget a socket; if it was its user's last here, check back after grace
        (unless the caller checks every such user itself, as a stop does)."""
        info = await self.roster.remove(sid)
        if check_later and info is not None and not self.roster.has_user(info.user_id):
            await self.check_later(info.user_id)
        return info

    async def check_later(self, user_id: int) -> None:
        """Check after the grace whether the user is gone from every process."""
        await self.roster.view.schedule_offline(user_id, time.time() + self.grace_s)
        asyncio.get_running_loop().call_later(
            self.grace_s, lambda: asyncio.ensure_future(self.check(user_id))
        )

    async def check(self, user_id: int) -> None:
        """Announce ``offline`` if the user has no socket left anywhere."""
        await self.check_many([user_id])

    async def check_many(self, user_ids) -> None:
        """``check`` for many users in one round trip to the cluster view."""
        away = [u for u in user_ids if not self.roster.has_user(u)]
        if away:
            for user_id in await self.roster.view.offline_if_gone_many(away):
                self._announce(user_id, OFFLINE)
        await self.flush()

    async def sweep(self) -> None:
        """Make the offline checks that are due (some other process's included)."""
        await self.check_many(await self.roster.view.due_offline())

    async def set_status(self, info, status) -> str:
        """Set a connected user's chosen status and announce it."""
        if isinstance(status, dict):
            status = status.get("status")
        if not isinstance(status, str) or status not in CHOOSABLE_STATUSES:
            raise invalid(
                "status", f"status must be one of: {', '.join(CHOOSABLE_STATUSES)}."
            )
        if self.roster.statuses.get(info.user_id) != status:
            self.roster.statuses[info.user_id] = status
            await self.roster.view.set_status(info.user_id, status)
            self._announce(info.user_id, status)
        return status

    def _announce(self, user_id: int, status: str) -> None:
        """Queue a ``presence-update`` for the user's co-participants."""
        now = timezone.now()
        self._pending[user_id] = (status, now)
        self._outbox.append((user_id, status, now))
        if self._sending is None or self._sending.done():
            self._sending = asyncio.get_running_loop().create_task(self._send())

    async def flush(self) -> None:
        """Wait until every queued announcement has left."""
        while self._sending is not None and not self._sending.done():
            await asyncio.shield(self._sending)

    async def _send(self) -> None:
        """Send queued announcements, a batch per audience query, in order."""
        while self._outbox:
            batch, self._outbox = self._outbox, []
            try:
                audiences = await database_sync_to_async(co_participants_of)(
                    user_ids={user_id for user_id, _, _ in batch}
                )
            except Exception:
                logger.exception("Could not find who to tell of %d users", len(batch))
                continue
            bus.users_events(
                event="presence-update",
                items=[
                    (
                        audiences[user_id],
                        {"userId": str(user_id), "status": status, "lastSeen": iso(at)},
                    )
                    for user_id, status, at in batch
                ],
            )

    async def record(self) -> None:
        """Write the statuses and last-seen times gathered so far."""
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        try:
            await database_sync_to_async(services.presence_record)(changes=batch)
        except Exception:
            logger.exception("Could not record %d presence changes", len(batch))

    async def run_recorder(self) -> None:
        """Record gathered changes every second, for the life of the process."""
        while True:
            await asyncio.sleep(RECORD_EVERY_S)
            await self.record()
