"""Presence across processes: online with a first socket, offline after the last.

A user whose last socket goes is checked again after a short grace (a reload
or a hop to another process does not flap them offline); the check is also
noted in the cluster view, so a survivor makes it if this process dies first.
Statuses and last-seen times are written to the database behind, in batches.
"""

import asyncio
import logging
import time

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

from bamchat.errors import invalid
from bamchat.formats import iso
from messaging.statements import co_participant_ids
from realtime import bus, services
from realtime.models import Presence as PresenceRow

logger = logging.getLogger(__name__)

CHOOSABLE_STATUSES = tuple(s for s in PresenceRow.Status.values if s != "offline")
# Database writes of presence are gathered for this long (seconds).
RECORD_EVERY_S = 1.0


class PresenceKeeper:
    """Decides and announces presence changes for this process's users."""

    def __init__(self, roster) -> None:
        self.roster = roster
        self._pending: dict[int, tuple[str, object]] = {}

    @property
    def grace_s(self) -> float:
        return settings.REALTIME["PRESENCE_GRACE_S"]

    async def connected(self, info) -> None:
        """A socket was added to the roster; announce the user if newly online."""
        if await self.roster.add(info):
            await self._announce(info.user_id, "online")

    async def disconnected(self, sid: str):
        """Forget a socket; if it was its user's last here, check back after grace."""
        info = await self.roster.remove(sid)
        if info is not None and not self.roster.has_user(info.user_id):
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
        if self.roster.has_user(user_id):
            return
        if await self.roster.view.offline_if_gone(user_id):
            await self._announce(user_id, "offline")

    async def sweep(self) -> None:
        """Make the offline checks that are due (some other process's included)."""
        for user_id in await self.roster.view.due_offline():
            await self.check(user_id)

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
            await self._announce(info.user_id, status)
        return status

    async def _announce(self, user_id: int, status: str) -> None:
        now = timezone.now()
        self._pending[user_id] = (status, now)
        try:
            audience = await database_sync_to_async(co_participant_ids)(user_id=user_id)
        except Exception:
            logger.exception("Could not find who to tell about user %s", user_id)
            return
        bus.users_event(
            user_ids=audience,
            event="presence-update",
            data={"userId": str(user_id), "status": status, "lastSeen": iso(now)},
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
