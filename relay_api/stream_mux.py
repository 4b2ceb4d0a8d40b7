"""One reader for every stream an API process relays: waiting streams hold no connection.

A stream waiting for its first token can wait minutes (a queue, a slow provider). One
``XREAD BLOCK`` per stream held one pooled Redis connection per waiting stream: past the pool's
size every request of every tenant waited for a connection, then failed. Here a few reader
tasks (*lanes*) each hold one connection on a small pool of their own and read up to
:data:`LANE_SIZE` streams with one ``XREAD BLOCK`` over all their keys, handing each stream's
entries to its :class:`Subscription`. However many streams wait, they cost at most
:data:`MAX_LANES` connections, none taken from the process's main pool.

A lane blocked in ``XREAD`` does not see a stream that joins it meanwhile: joining *wakes* it by
appending to the lane's own wake stream, which every read of the lane includes, so the read
returns at once and the next one takes the new key (one ``XADD`` per read at most, whatever
joined). A stream whose reader falls behind (a slow client) is left out of the reads while it
holds :data:`MAX_BUFFERED` entries, so memory stays bounded: the rest waits in Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from relay_core.errors import GatewayTimeout, ServiceError

log = logging.getLogger("relay.api")

LANE_SIZE = 64  # streams one lane reads (its XREAD names them all, so keep it modest)
MAX_LANES = 16  # beyond LANE_SIZE x MAX_LANES streams, lanes take more than LANE_SIZE each
BLOCK_MS = 2_000  # one XREAD waits at most this long (joining streams wake it sooner)
READ_COUNT = 512  # entries taken per stream per XREAD
MAX_BUFFERED = READ_COUNT  # a stream holding this many unread entries is not read further
RETRY_S = 0.2  # after a failed read, the lane waits this long before reading again
WAKE_TTL_MS = 60_000

Fields = dict[bytes, bytes]


class ClientLeft(Exception):
    """The client disconnected while its stream was waiting (:meth:`Subscription.leave`)."""


class Subscription:
    """One stream's entries as its lane reads them."""

    def __init__(self, lane: _Lane, key: str) -> None:
        self.lane = lane
        self.key = key
        self.last = b"0-0"  # the id of the last entry read (by the lane)
        self.skipped = False  # left out of the lane's current read: too many unread entries
        self._entries: list[Fields] = []
        self._ready = asyncio.Event()
        self._error: Exception | None = None
        self._left = False

    @property
    def wanted(self) -> bool:
        return len(self._entries) < MAX_BUFFERED

    async def read(self, wait_s: float) -> list[Fields]:
        """The entries that came since the last read; :class:`GatewayTimeout` when none comes
        within ``wait_s``, :class:`ClientLeft` after :meth:`leave`, the lane's error if its
        read failed."""
        if not self._entries and not self._left and self._error is None:
            try:
                async with asyncio.timeout(wait_s):
                    await self._ready.wait()
            except TimeoutError:
                raise GatewayTimeout(f"No answer within {wait_s:.0f} s.") from None
        self._ready.clear()
        if self._left:
            raise ClientLeft
        if not self._entries and self._error is not None:
            error, self._error = self._error, None
            raise error
        entries, self._entries = self._entries, []
        if self.skipped:
            self.lane.wake()
        return entries

    def leave(self) -> None:
        """The client went away: a waiting :meth:`read` raises :class:`ClientLeft`."""
        self._left = True
        self._ready.set()

    def close(self) -> None:
        self.lane.drop(self)

    def deliver(self, entries: list[tuple[bytes, Fields]]) -> None:
        self.last = entries[-1][0]
        self._entries.extend(fields for _, fields in entries)
        self._ready.set()

    def fail(self, error: Exception) -> None:
        self._error = error
        self._ready.set()


class _Lane:
    """One reader task and the streams it reads."""

    def __init__(self, redis: Redis, wake_key: str) -> None:
        self.redis = redis
        self.wake_key = wake_key
        self.subs: dict[str, Subscription] = {}
        self._wake_last = b"0-0"
        self._reading = False  # an XREAD is under way
        self._woken = False  # ... and a wake was sent for it
        self._has_work = asyncio.Event()
        self._wakes: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"relay-streams-{self.wake_key}")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._wakes) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for sub in list(self.subs.values()):
            sub.fail(ServiceError("Relay is shutting down."))
        with contextlib.suppress(RedisError):
            await self.redis.delete(self.wake_key)

    def add(self, key: str) -> Subscription:
        sub = Subscription(self, key)
        self.subs[key] = sub
        self._has_work.set()
        self.wake()
        return sub

    def drop(self, sub: Subscription) -> None:
        if self.subs.get(sub.key) is sub:
            del self.subs[sub.key]

    def wake(self) -> None:
        """Make the XREAD under way return, so that the next one reads every wanted stream."""
        if not self._reading or self._woken:
            return  # the next read is not sent yet: it will name the stream
        self._woken = True
        task = asyncio.create_task(self._send_wake())
        self._wakes.add(task)
        task.add_done_callback(self._wakes.discard)

    async def _send_wake(self) -> None:
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.xadd(self.wake_key, {b"w": b"1"}, maxlen=1, approximate=False)
                pipe.pexpire(self.wake_key, WAKE_TTL_MS)
                await pipe.execute()
        except RedisError:  # the read still ends within BLOCK_MS
            log.warning("could not wake a stream reader", exc_info=True)

    async def _run(self) -> None:
        while True:
            if not self.subs:
                self._has_work.clear()
                await self._has_work.wait()
                continue
            reading = self._choose()
            streams: dict[Any, Any] = {self.wake_key: self._wake_last}
            streams.update({s.key: s.last for s in reading})
            self._reading, self._woken = True, False
            try:
                found = await self.redis.xread(streams, count=READ_COUNT, block=BLOCK_MS)
            except Exception as exc:  # Redis, or a bug: the lane must live on either way
                log.warning("stream read failed", exc_info=True)
                for sub in reading:
                    sub.fail(exc)
                await asyncio.sleep(RETRY_S)
                continue
            finally:
                self._reading = False
            self._deliver(found)

    def _choose(self) -> list[Subscription]:
        chosen = []
        for sub in self.subs.values():
            sub.skipped = not sub.wanted
            if not sub.skipped:
                chosen.append(sub)
        return chosen

    def _deliver(self, found: Any) -> None:
        for key, entries in _by_stream(found):
            if not entries:
                continue
            name = key.decode() if isinstance(key, bytes) else str(key)
            if name == self.wake_key:
                self._wake_last = entries[-1][0]
                continue
            sub = self.subs.get(name)
            if sub is not None:  # else it closed during the read
                sub.deliver(entries)


def _by_stream(found: Any) -> Iterable[tuple[Any, list[tuple[bytes, Fields]]]]:
    """``(key, entries)`` of each stream read (RESP2 answers a list, RESP3 a mapping)."""
    if not found:
        return []
    if isinstance(found, dict):
        return list(found.items())
    return [(s[0], s[1]) for s in found]


class StreamMux:
    """The API process's stream reading: :meth:`open` a key, read its entries, close it."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis  # a pool of its own: MAX_LANES readers plus the wakes
        self.prefix = prefix
        self.name = uuid.uuid4().hex[:16]
        self.lanes: list[_Lane] = []

    def open(self, key: str) -> Subscription:
        return self._lane().add(key)

    @property
    def streams(self) -> int:
        return sum(len(lane.subs) for lane in self.lanes)

    def _lane(self) -> _Lane:
        lane = min(self.lanes, key=lambda la: len(la.subs), default=None)
        if lane is not None and (len(lane.subs) < LANE_SIZE or len(self.lanes) >= MAX_LANES):
            return lane
        lane = _Lane(self.redis, f"{self.prefix}:streamwake:{self.name}:{len(self.lanes)}")
        lane.start()
        self.lanes.append(lane)
        return lane

    async def stop(self) -> None:
        for lane in self.lanes:
            await lane.stop()
        await self.redis.aclose(close_connection_pool=True)
