"""This process's live sockets and the rooms they are in, mirrored to the cluster.

Nothing here touches the database: a connect, join, leave or disconnect costs a
few dictionary operations and (with Redis) one pipelined round trip.
"""

import asyncio
import time
from dataclasses import dataclass, field
from functools import cached_property

from django.conf import settings
from django.contrib.auth import get_user_model

from realtime.cluster import ONLINE, MemoryView, RedisView


@dataclass(eq=False)
class SocketInfo:
    """What this process knows about one of its sockets."""

    sid: str
    eio_sid: str
    user_id: int
    username: str
    expires_at: float  # POSIX seconds
    transport: str
    address: str
    connected_at: float = field(default_factory=time.time)
    rooms: set[int] = field(default_factory=set)  # BAM rooms joined
    access: set[int] = field(default_factory=set)  # BAMs whose membership was checked
    # BAMs its user was removed from while it lived: a join that was checking
    # the membership when the removal came must not enter the room after it.
    revoked: set[int] = field(default_factory=set)
    expiry: asyncio.TimerHandle | None = None
    # Its events run one at a time, in the order they came; at most
    # MAX_WAITING_EVENTS wait (see BamNamespace).
    turn: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting: int = 0
    gone: bool = False  # disconnected: nothing may add it to a room any more

    @cached_property
    def user(self):
        """The socket's user as the services take it, built once. It was
        checked at connect and its sockets are dropped on deactivation, so the
        services need no query for it: id and username are all they read."""
        return get_user_model()(pk=self.user_id, username=self.username)


class Roster:
    """Local tables (by sid, by user, by BAM room) and the cluster view."""

    def __init__(self, process_id: str) -> None:
        self.process_id = process_id
        self.local: dict[str, SocketInfo] = {}
        self.by_user: dict[int, set[str]] = {}
        self.rooms: dict[int, set[str]] = {}
        self.statuses: dict[int, str] = {}  # chosen status of users with sockets here
        url = getattr(settings, "REDIS_URL", "")
        self.view = RedisView(self, url) if url else MemoryView(self)

    async def add(self, info: SocketInfo) -> bool:
        """Record a new socket; True if its user had no socket anywhere before."""
        self.local[info.sid] = info
        self.by_user.setdefault(info.user_id, set()).add(info.sid)
        self.statuses.setdefault(info.user_id, ONLINE)
        return await self.view.socket_added(info)

    async def remove(self, sid: str) -> SocketInfo | None:
        """Forget a socket (and its rooms); returns what was known of it."""
        info = self.local.pop(sid, None)
        if info is None:
            return None
        if info.expiry is not None:
            info.expiry.cancel()
        sids = self.by_user.get(info.user_id)
        if sids is not None:
            sids.discard(sid)
            if not sids:
                del self.by_user[info.user_id]
                self.statuses.pop(info.user_id, None)
        for bam_id in info.rooms:
            self._room_discard(bam_id, sid)
        await self.view.sockets_removed([info])
        return info

    async def enter(self, info: SocketInfo, bam_id: int) -> bool:
        """Put a socket in a BAM's room; False if it was there already."""
        if bam_id in info.rooms or info.gone:
            return False
        info.rooms.add(bam_id)
        self.rooms.setdefault(bam_id, set()).add(info.sid)
        await self.view.room_entered(info, bam_id)
        return True

    async def leave(self, info: SocketInfo, bam_id: int) -> bool:
        """Take a socket out of a BAM's room; False if it was not in it."""
        if bam_id not in info.rooms:
            return False
        info.rooms.discard(bam_id)
        self._room_discard(bam_id, info.sid)
        await self.view.room_left(info, bam_id)
        return True

    def _room_discard(self, bam_id: int, sid: str) -> None:
        members = self.rooms.get(bam_id)
        if members is not None:
            members.discard(sid)
            if not members:
                del self.rooms[bam_id]

    def has_user(self, user_id: int) -> bool:
        """Whether the user has a socket on this process."""
        return bool(self.by_user.get(user_id))

    def user_sids(self, user_ids, except_bam: int | None = None) -> list[str]:
        """Local sockets of these users, leaving out those in ``except_bam``'s room."""
        found = []
        for user_id in user_ids:
            for sid in self.by_user.get(user_id, ()):
                if except_bam is None or except_bam not in self.local[sid].rooms:
                    found.append(sid)
        return found

    def local_room_users(self, bam_id: int) -> list[int]:
        """Users with a socket in the BAM's room on this process."""
        return sorted({self.local[s].user_id for s in self.rooms.get(bam_id, ())})
