"""Typing state: per (BAM, user), expiring by itself when not renewed."""

import asyncio
from dataclasses import dataclass

from django.conf import settings

from realtime import bus


@dataclass
class _Typing:
    sid: str
    username: str
    timer: asyncio.TimerHandle


class TypingTracker:
    """One ``typing-status`` per state change; renewals only push expiry back."""

    def __init__(self, server) -> None:
        self._server = server
        self._state: dict[tuple[int, int], _Typing] = {}

    async def start(
        self, *, bam_id: int, user_id: int, username: str, sid: str
    ) -> None:
        key = (bam_id, user_id)
        ttl = settings.REALTIME["TYPING_TTL_S"]
        loop = asyncio.get_running_loop()
        current = self._state.get(key)
        timer = loop.call_later(ttl, self._expire, key)
        self._state[key] = _Typing(sid=sid, username=username, timer=timer)
        if current is not None:
            current.timer.cancel()
            return
        await self._announce(key, username, sid, True)

    async def stop(self, *, bam_id: int, user_id: int) -> None:
        key = (bam_id, user_id)
        current = self._state.pop(key, None)
        if current is None:
            return
        current.timer.cancel()
        await self._announce(key, current.username, current.sid, False)

    def _expire(self, key) -> None:
        current = self._state.pop(key, None)
        if current is not None:
            self._server.background(
                self._announce(key, current.username, current.sid, False)
            )

    async def _announce(self, key, username: str, sid: str, is_typing: bool) -> None:
        bam_id, user_id = key
        payload = {
            "bamId": str(bam_id),
            "userId": str(user_id),
            "username": username,
            "isTyping": is_typing,
        }
        bus.room_event(bam_id=bam_id, event="typing-status", data=payload, skip_sid=sid)
