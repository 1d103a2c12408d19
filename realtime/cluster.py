"""The cluster's view of live sockets, rooms and presence: in memory or in Redis.

Each process is the only writer of its own sockets; it keeps them in memory
(``realtime.roster``) and mirrors them here so that every process can answer
"who is online", "who is in this room" and "does this user still have a socket".
With one process (the embedded default) the process's memory is the whole view.
With Redis, the view lives in a few hashes; a process that finds Redis empty
again (a restart) writes its part back.

Keys under ``bamchat:rt:``: ``sockets:{process}`` (sid → JSON of the socket),
``user:{id}`` (sid → process), ``room:{bam}`` (sid → user), ``presence``
(user → status) and ``offline-due`` (user → when to check whether they left).
"""

import asyncio
import json
import logging
import time

from realtime.batching import Batcher
from realtime.models import Presence

ONLINE = Presence.Status.ONLINE.value

logger = logging.getLogger(__name__)

PREFIX = "bamchat:rt:"
# Redis calls on the message path give up after this long (seconds): a slow or
# restarting Redis must not hold acks, it only pauses the cluster view.
REDIS_TIMEOUT_S = 0.5
# Calls of this process sharing one pipeline at most.
PIPELINE_BATCH = 500
# A stopping process waits this long to take its sockets out of the view (one
# pipeline, however many sockets); past it the survivors' reaper does it.
DETACH_TIMEOUT_S = 1.0

# KEYS: user:{id}, presence. ARGV: user id. Offline only if no socket is left.
_OFFLINE_IF_GONE = """
if redis.call('HLEN', KEYS[1]) == 0 then
  return redis.call('HDEL', KEYS[2], ARGV[1])
end
return 0
"""


def socket_record(info) -> dict:
    """What the cluster keeps of one socket (plain data)."""
    return {
        "sid": info.sid,
        "user": info.user_id,
        "username": info.username,
        "transport": info.transport,
        "address": info.address,
        "since": info.connected_at,
        "bams": sorted(info.rooms),
    }


class MemoryView:
    """One process: its own memory is the cluster."""

    shared = False

    def __init__(self, roster) -> None:
        self.roster = roster
        self.presence: dict[int, str] = {}

    async def socket_added(self, info) -> bool:
        first = info.user_id not in self.presence
        self.presence.setdefault(info.user_id, ONLINE)
        return first

    async def socket_changed(self, info) -> None:
        return None

    async def room_entered(self, info, bam_id: int) -> None:
        return None

    async def room_left(self, info, bam_id: int) -> None:
        return None

    async def sockets_removed(self, infos) -> None:
        return None

    async def offline_if_gone_many(self, user_ids) -> list[int]:
        return [
            u
            for u in user_ids
            if not self.roster.by_user.get(u) and self.presence.pop(u, None) is not None
        ]

    async def detach(self) -> None:
        return None

    async def set_status(self, user_id: int, status: str) -> None:
        self.presence[user_id] = status

    async def room_users(self, bam_id: int) -> list[int]:
        return self.room_users_now(bam_id)

    async def due_offline(self) -> list[int]:
        return []

    async def schedule_offline(self, user_id: int, due: float) -> None:
        return None

    async def resync_if_lost(self) -> None:
        return None

    async def forget_process(self, process_id: str) -> list[int]:
        return []

    # -- reads for views (sync) -----------------------------------------------------
    def status_now(self, user_id: int) -> str | None:
        return self.presence.get(user_id)

    def user_sockets_now(self, user_id: int) -> int:
        return len(self.roster.by_user.get(user_id, ()))

    def room_users_now(self, bam_id: int) -> list[int]:
        sockets = self.roster.local
        return sorted({sockets[s].user_id for s in self.roster.rooms.get(bam_id, ())})

    def sockets_now(self) -> list[dict]:
        return [
            socket_record(i) | {"process": self.roster.process_id}
            for i in list(self.roster.local.values())
        ]

    def statuses_now(self) -> dict[int, str]:
        return dict(self.presence)


class RedisView:
    """Many processes: the view lives in Redis; every call fails fast and softly."""

    shared = True

    def __init__(self, roster, url: str) -> None:
        import redis

        from realtime.redisclient import RedisBackoff, redis_client

        self.roster = roster
        self.client = redis_client(url, timeout_s=REDIS_TIMEOUT_S)
        self.sync = redis.Redis.from_url(
            url, socket_timeout=2, socket_connect_timeout=2
        )
        self._offline = self.client.register_script(_OFFLINE_IF_GONE)
        self._pipelines = Batcher(self._run_builds, max_batch=PIPELINE_BATCH)
        self.backoff = RedisBackoff()
        self.detached = False  # stopping: this process writes nothing more
        self.lost = False  # True when Redis may lack our part: rewrite it first
        self._rewriting = False  # a write-back is under way

    # -- plumbing -------------------------------------------------------------------
    def _key(self, *parts) -> str:
        return PREFIX + ":".join(str(p) for p in parts)

    @property
    def _sockets_key(self) -> str:
        return self._key("sockets", self.roster.process_id)

    def _usable(self) -> bool:
        return not self.backoff.waiting

    def _failed(self, exc: BaseException) -> None:
        if not self.lost:
            logger.error("Redis unreachable; cluster view paused: %s", exc)
        self.lost = True
        self.backoff.failed()

    async def _run(self, build, default=None):
        """Run a pipeline built by ``build``; on failure, remember and move on."""
        return (await self._run_noting_rewrite(build, default))[1]

    async def _run_noting_rewrite(self, build, default=None) -> tuple[bool, object]:
        """``_run``, and whether our part was written back before it (so the
        pipeline's answers may reflect the rewrite rather than this call)."""
        if self.detached or not self._usable():
            return False, default
        try:
            return await self._pipelines.submit(build)
        except Exception as exc:
            self._failed(exc)
            return False, default

    async def _run_builds(self, builds) -> list[tuple[bool, list]]:
        """One pipeline for the calls that waited together (a connect storm's
        thousands of writes become a few round trips); each call gets its own
        answers, and whether our part was written back first."""
        if not self._usable():  # the previous batch found Redis away: fail fast
            raise ConnectionError("Redis was unreachable a moment ago")
        rewrote = False
        if self.lost:
            rewrote = await self._write_back()
        pipe = self.client.pipeline(transaction=True)
        spans = []
        for build in builds:
            start = len(pipe.command_stack)
            build(pipe)
            spans.append((start, len(pipe.command_stack)))
        answers = await pipe.execute()
        return [(rewrote, answers[start:end]) for start, end in spans]

    async def _write_back(self) -> bool:
        """Write our part back once, however many calls find it lost at once (a
        connect storm makes thousands: each rewriting every socket would never
        end). The others do not wait for it: their own writes add to what it
        writes. True when this call wrote our part back."""
        if self._rewriting:
            return False
        self._rewriting = True
        try:
            if self.lost:
                await self._write_all()
                return True
            return False
        finally:
            self._rewriting = False

    async def _write_all(self) -> None:
        """Write this process's sockets, rooms and users' statuses (again)."""
        roster = self.roster
        pipe = self.client.pipeline(transaction=False)
        pipe.delete(self._sockets_key)
        for info in list(roster.local.values()):
            self._put_socket(pipe, info)
            for bam_id in info.rooms:
                pipe.hset(self._key("room", bam_id), info.sid, info.user_id)
        for user_id, status in roster.statuses.items():
            pipe.hsetnx(self._key("presence"), user_id, status)
        await pipe.execute()
        if self.lost:
            logger.warning(
                "Cluster view written back to Redis (%d sockets)", len(roster.local)
            )
        self.lost = False

    def _put_socket(self, pipe, info) -> None:
        pipe.hset(self._sockets_key, info.sid, json.dumps(socket_record(info)))
        pipe.hset(self._key("user", info.user_id), info.sid, self.roster.process_id)

    # -- writes of this process -----------------------------------------------------
    async def socket_added(self, info) -> bool:
        def build(pipe):
            self._put_socket(pipe, info)
            pipe.hsetnx(self._key("presence"), info.user_id, ONLINE)

        rewrote, result = await self._run_noting_rewrite(build)
        if result is None or rewrote:
            # Redis was away (or just got our part back, this socket included):
            # decide from what this process knows.
            return len(self.roster.by_user.get(info.user_id, ())) == 1
        return bool(result[-1])

    async def socket_changed(self, info) -> None:
        await self._run(
            lambda p: p.hset(
                self._sockets_key, info.sid, json.dumps(socket_record(info))
            )
        )

    async def room_entered(self, info, bam_id: int) -> None:
        def build(pipe):
            pipe.hset(self._key("room", bam_id), info.sid, info.user_id)
            pipe.hset(self._sockets_key, info.sid, json.dumps(socket_record(info)))

        await self._run(build)

    async def room_left(self, info, bam_id: int) -> None:
        def build(pipe):
            pipe.hdel(self._key("room", bam_id), info.sid)
            pipe.hset(self._sockets_key, info.sid, json.dumps(socket_record(info)))

        await self._run(build)

    async def sockets_removed(self, infos) -> None:
        def build(pipe):
            for info in infos:
                self._drop_socket(pipe, info.sid, info.user_id, info.rooms)
                pipe.hdel(self._sockets_key, info.sid)

        await self._run(build)

    def _drop_socket(self, pipe, sid: str, user_id: int, bams) -> None:
        pipe.hdel(self._key("user", user_id), sid)
        for bam_id in bams:
            pipe.hdel(self._key("room", bam_id), sid)

    async def set_status(self, user_id: int, status: str) -> None:
        await self._run(lambda p: p.hset(self._key("presence"), user_id, status))

    async def offline_if_gone_many(self, user_ids) -> list[int]:
        """Of these users, those who had no socket left anywhere and were online:
        they are offline now (one round trip for all of them)."""
        user_ids = list(user_ids)
        if not user_ids or not self._usable():
            return []
        try:
            pipe = self.client.pipeline(transaction=False)
            for user_id in user_ids:
                await self._offline(  # queued in the pipeline
                    keys=[self._key("user", user_id), self._key("presence")],
                    args=[user_id],
                    client=pipe,
                )
            pipe.zrem(self._key("offline-due"), *user_ids)
            removed = await pipe.execute()
        except Exception as exc:
            self._failed(exc)
            return []
        return [u for u, gone in zip(user_ids, removed, strict=False) if gone]

    async def detach(self) -> None:
        """Take every socket of this process out of the view in one step, and
        write nothing more of them (a stopping process: survivors must stop
        counting its sockets at once, and never see them again)."""
        self.detached = True
        pipe = self.client.pipeline(transaction=False)
        for info in list(self.roster.local.values()):
            self._drop_socket(pipe, info.sid, info.user_id, info.rooms)
        pipe.delete(self._sockets_key)
        try:
            await asyncio.wait_for(pipe.execute(), DETACH_TIMEOUT_S)
        except Exception as exc:
            # Survivors reap this process's part when its heartbeat stops.
            logger.error("Could not take this process out of the view: %s", exc)

    async def schedule_offline(self, user_id: int, due: float) -> None:
        await self._run(lambda p: p.zadd(self._key("offline-due"), {user_id: due}))

    async def due_offline(self) -> list[int]:
        result = await self._run(
            lambda p: p.zrangebyscore(self._key("offline-due"), "-inf", time.time()),
            default=[[]],
        )
        return [int(u) for u in result[0]]

    async def resync_if_lost(self) -> None:
        """Write our part back if Redis lost it (a restart) or we could not write."""
        if self.detached or not self._usable():
            return
        try:
            if not self.lost and self.roster.local:
                if not await self.client.exists(self._sockets_key):
                    self.lost = True
            if self.lost:
                await self._write_back()
        except Exception as exc:
            self._failed(exc)

    async def forget_process(self, process_id: str) -> list[int]:
        """Remove a dead process's sockets; returns the users they belonged to."""
        key = self._key("sockets", process_id)
        try:
            records = await self.client.hgetall(key)
            pipe = self.client.pipeline(transaction=False)
            users = set()
            for sid, raw in records.items():
                record = json.loads(raw)
                users.add(int(record["user"]))
                self._drop_socket(pipe, sid.decode(), record["user"], record["bams"])
            pipe.delete(key)
            await pipe.execute()
        except Exception as exc:
            self._failed(exc)
            return []
        return sorted(users)

    # -- reads for views (sync, from worker threads) --------------------------------
    def status_now(self, user_id: int) -> str | None:
        value = self.sync.hget(self._key("presence"), user_id)
        return value.decode() if value else None

    def user_sockets_now(self, user_id: int) -> int:
        return int(self.sync.hlen(self._key("user", user_id)))

    def room_users_now(self, bam_id: int) -> list[int]:
        return sorted({int(u) for u in self.sync.hvals(self._key("room", bam_id))})

    async def room_users(self, bam_id: int) -> list[int]:
        result = await self._run(lambda p: p.hvals(self._key("room", bam_id)))
        if result is None:
            return self.roster.local_room_users(bam_id)
        return sorted({int(u) for u in result[0]})

    def sockets_now(self) -> list[dict]:
        records = []
        for key in self.sync.scan_iter(match=self._key("sockets", "*"), count=500):
            process = key.decode().rsplit(":", 1)[-1]
            for raw in self.sync.hvals(key):
                records.append(json.loads(raw) | {"process": process})
        return records

    def statuses_now(self) -> dict[int, str]:
        return {
            int(k): v.decode()
            for k, v in self.sync.hgetall(self._key("presence")).items()
        }
