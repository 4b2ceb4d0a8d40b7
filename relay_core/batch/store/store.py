"""Batches in Redis: create, read, list, move between statuses, and the feeder's operations.

Every operation that must be atomic across API processes and workers is one Lua script
(``claim``, ``record``, ``stale``, ``transition``). Reads for a client check the owner: another
gateway key's batch is a 404.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files

from redis.asyncio import Redis

from relay_core.batch.lines import LineRef
from relay_core.batch.models import BatchObject, BatchProgress, BatchStatus, ProviderProgress
from relay_core.batch.store.keys import BatchKeys, active_batches, owner_batches
from relay_core.batch.store.record import (
    BatchRecord,
    Fields,
    decode,
    finalize_failures,
    to_object,
)
from relay_core.errors import NotFound


def new_batch_id() -> str:
    return "batch_" + secrets.token_hex(12)


Args = list[str | int | float | bytes]
# How long a line's attempt count outlives its batch's window (a late visit may write it after
# the finalize removed it).
KEEP_TRIES_S = 24 * 3600.0


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _raw(value: bytes | str | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


def _script(name: str) -> str:
    return files(__package__).joinpath(name).read_text()


@dataclass(frozen=True, slots=True)
class NewBatch:
    owner: str
    endpoint: str
    input_file_id: str
    completion_window: str
    window_s: float
    metadata: dict[str, str] | None = None
    default_model: str | None = None
    retry_of: str | None = None


@dataclass(frozen=True, slots=True)
class Claimed:
    first: int  # the first line's index
    count: int  # lines taken (0: none now)
    # Each provider's room left in its share, before these lines (below 0: it holds more
    # than its share, lines other providers handed on to it).
    room: dict[str, int]


@dataclass(frozen=True, slots=True)
class Recorded:
    outcome: int  # 1 recorded now, 0 recorded before, -1 too late (the batch is finalizing)
    finished: bool  # every line has a result


class BatchStore:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self._claim = redis.register_script(_script("claim.lua"))
        self._record = redis.register_script(_script("record.lua"))
        self._stale = redis.register_script(_script("stale.lua"))
        self._orphans = redis.register_script(_script("orphans.lua"))
        self._assign = redis.register_script(_script("assign.lua"))
        self._transition = redis.register_script(_script("transition.lua"))

    def keys(self, batch_id: str) -> BatchKeys:
        return BatchKeys(self.prefix, batch_id)

    # ---- clients ---------------------------------------------------------------------------

    async def create(self, new: NewBatch) -> BatchObject:
        batch_id = new_batch_id()
        now = time.time()
        fields: Fields = {
            "id": batch_id,
            "owner": new.owner,
            "endpoint": new.endpoint,
            "input_file_id": new.input_file_id,
            "completion_window": new.completion_window,
            "status": BatchStatus.validating.value,
            "created_at": str(int(now)),
            "expires_at": str(int(now + new.window_s)),
            "expires_at_exact": repr(now + new.window_s),
            "total": "0",
            "completed": "0",
            "failed": "0",
            "next": "0",
        }
        if new.metadata is not None:
            fields["metadata"] = json.dumps(new.metadata)
        if new.default_model:
            fields["default_model"] = new.default_model
        if new.retry_of:
            fields["retry_of"] = new.retry_of
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys(batch_id).meta, mapping=fields)  # type: ignore[arg-type]
            pipe.zadd(owner_batches(self.prefix, new.owner), {batch_id: now})
            pipe.sadd(active_batches(self.prefix), batch_id)
            await pipe.execute()
        return to_object(fields)

    async def batch(self, batch_id: str) -> BatchRecord | None:
        """The batch's hash, decoded once into a :class:`BatchRecord` (None: no such batch)."""
        raw = await self.redis.hgetall(self.keys(batch_id).meta)
        return BatchRecord.decode(decode(raw)) if raw else None

    async def owned(self, batch_id: str, owner: str) -> BatchRecord:
        batch = await self.batch(batch_id) if batch_id.startswith("batch_") else None
        if batch is None or batch.owner != owner:
            raise NotFound(f"No such Batch object: {batch_id}", param="batch_id")
        return batch

    async def get(self, batch_id: str, owner: str) -> BatchObject:
        return to_object((await self.owned(batch_id, owner)).fields)

    async def page(
        self, owner: str, *, limit: int, after: str | None = None
    ) -> tuple[list[BatchObject], bool]:
        """The owner's batches, newest first, after the id ``after``; and whether more follow."""
        key = owner_batches(self.prefix, owner)
        start = 0
        if after is not None:
            rank = await self.redis.zrevrank(key, after)
            if not isinstance(rank, int):
                return [], False
            start = rank + 1
        ids = [_text(i) for i in await self.redis.zrevrange(key, start, start + limit)]
        async with self.redis.pipeline(transaction=False) as pipe:
            for batch_id in ids[:limit]:
                pipe.hgetall(self.keys(batch_id).meta)
            raws = await pipe.execute()
        found = [to_object(decode(raw)) for raw in raws if raw]
        return found, len(ids) > limit

    async def transition(
        self,
        batch_id: str,
        to: BatchStatus,
        from_: Sequence[BatchStatus],
        **extra: str | int,
    ) -> bool:
        args: Args = [to.value, ",".join(s.value for s in from_)]
        for name, value in extra.items():
            args += [name, value]
        moved = await self._transition(keys=[self.keys(batch_id).meta], args=args)
        return bool(moved)

    # ---- workers ---------------------------------------------------------------------------

    async def active(self) -> list[str]:
        return sorted(_text(m) for m in await self.redis.smembers(active_batches(self.prefix)))

    async def retire(self, batch_id: str) -> None:
        await self.redis.srem(active_batches(self.prefix), batch_id)

    async def claim(
        self,
        batch_id: str,
        *,
        now: float,
        rate: float,
        burst: float,
        window: int,
        max_n: int,
        due: float,
        shares: Mapping[str, int] | None = None,
    ) -> Claimed:
        """Take the next lines the pace allows: at most ``window`` in flight in all, or with
        ``shares`` (provider -> lines it may hold) at most each provider's share."""
        k = self.keys(batch_id)
        args: Args = [repr(now), repr(rate), repr(burst), window, max_n, repr(due)]
        order = list(shares or {})
        for provider in order:
            args += [provider, (shares or {})[provider]]
        first, count, *rooms = await self._claim(keys=[k.meta, k.inflight, k.flying], args=args)
        room = {p: int(r) for p, r in zip(order, rooms, strict=False)}
        return Claimed(int(first), int(count), room)

    async def assign(self, batch_id: str, lines: Sequence[tuple[int, str]]) -> None:
        """Note each line's provider (its first candidate), for the providers' shares."""
        if not lines:
            return
        k = self.keys(batch_id)
        args: Args = [v for index, provider in lines for v in (index, provider)]
        await self._assign(keys=[k.inflight, k.assigned, k.flying], args=args)

    async def stale(self, batch_id: str, *, now: float, due: float, max_n: int) -> list[int]:
        """Take the lines whose sign of life is overdue (counted as ``overdue`` re-sends)."""
        k = self.keys(batch_id)
        found = await self._stale(keys=[k.inflight, k.meta], args=[repr(now), repr(due), max_n])
        return [int(i) for i in found]

    async def orphans(self, batch_id: str, indices: Sequence[int], *, due: float) -> list[int]:
        """Take the lines of ``indices`` still in flight, held by a worker found dead
        (counted as ``worker_died`` re-sends)."""
        if not indices:
            return []
        k = self.keys(batch_id)
        found = await self._orphans(keys=[k.inflight, k.meta], args=[repr(due), *indices])
        return [int(i) for i in found]

    async def touch(self, batch_id: str, index: int, due: float) -> None:
        await self.redis.zadd(self.keys(batch_id).inflight, {str(index): due}, xx=True)

    async def renew(self, lines: Iterable[tuple[str, int]], due: float) -> None:
        """Give lines being visited now a new sign-of-life due time, in one round trip (a
        line no longer in flight, recorded meanwhile, is left out)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for batch_id, index in lines:
                pipe.zadd(self.keys(batch_id).inflight, {str(index): due}, xx=True)
            await pipe.execute()

    async def tried(self, batch_id: str, index: int, last: bytes, *, until: float) -> int:
        """Count one more failed upstream attempt of line ``index``, keeping ``last`` (its
        error-file line) as the line's latest failure; the count so far. Both survive
        redeliveries and re-sends; they go with the results at finalize (or after ``until``
        plus a day, should a late visit write them after that)."""
        k = self.keys(batch_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(k.tries, str(index), 1)
            pipe.hset(k.last, str(index), last)
            for key in (k.tries, k.last):
                pipe.expireat(key, int(until + KEEP_TRIES_S))
            count, *_ = await pipe.execute()
        return int(count)

    async def last_failures(self, batch_id: str, indices: Sequence[int]) -> list[bytes | None]:
        """Each line's latest failed attempt (its error-file line), None for a line that
        never failed upstream."""
        if not indices:
            return []
        found = await self.redis.hmget(self.keys(batch_id).last, [str(i) for i in indices])
        return [_raw(v) for v in found]

    async def refs(self, batch_id: str, indices: Sequence[int]) -> list[tuple[int, LineRef]]:
        key = self.keys(batch_id).lines
        if not indices:
            return []
        lo, hi = min(indices), max(indices)
        if hi - lo + 1 == len(indices):
            raws = await self.redis.lrange(key, lo, hi)
            return [(lo + i, LineRef.decode(r)) for i, r in enumerate(raws)]
        async with self.redis.pipeline(transaction=False) as pipe:
            for i in indices:
                pipe.lindex(key, i)
            raws = await pipe.execute()
        return [(i, LineRef.decode(r)) for i, r in zip(indices, raws, strict=True) if r]

    async def record(
        self,
        batch_id: str,
        *,
        custom_id: str,
        index: int,
        line: bytes,
        ok: bool,
        tokens: tuple[int, int] = (0, 0),
        provider: str | None = None,
        upstream_s: float = 0.0,
    ) -> Recorded:
        k = self.keys(batch_id)
        args: Args = [custom_id, index, line, int(ok), tokens[0], tokens[1], provider or ""]
        args.append(repr(upstream_s))
        keys = [k.meta, k.results, k.inflight, k.providers, k.assigned, k.flying]
        outcome, finished = await self._record(keys=keys, args=args)
        return Recorded(int(outcome), bool(int(finished)))

    async def progress(self, batch: BatchRecord) -> BatchProgress:
        fields = batch.fields
        k = self.keys(batch.id)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcard(k.inflight)
            pipe.hgetall(k.providers)
            in_flight, raw = await pipe.execute()
        providers: dict[str, ProviderProgress] = {}
        for name_kind, count in decode(raw).items():
            name, _, kind = name_kind.rpartition(":")
            entry = providers.setdefault(name, ProviderProgress())
            if kind == "ok":
                entry.completed = int(count)
            else:
                entry.failed = int(count)
        obj = to_object(fields)
        return BatchProgress(
            id=obj.id,
            status=obj.status,
            request_counts=obj.request_counts,
            dispatched=batch.dispatched,
            in_flight=int(in_flight),
            providers=providers,
            created_at=obj.created_at,
            in_progress_at=obj.in_progress_at,
            expires_at=obj.expires_at,
            finalize_error=batch.finalize_error,
            finalize_failures=finalize_failures(fields),
            resent=batch.resent,
        )

    async def finalize_failed(self, batch_id: str, message: str) -> int:
        """Note that writing the batch's output files failed (``message`` says why, for its
        owner); returns how many attempts have failed so far."""
        meta = self.keys(batch_id).meta
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(meta, "finalize_failures", 1)
            pipe.hset(meta, "finalize_error", message)
            count, _ = await pipe.execute()
        return int(count)

    async def backlog(self, owner: str) -> int:
        """Lines not yet finished in ``owner``'s running batches (never another tenant's: how
        busy the others are is theirs to know)."""
        left = 0
        for batch_id in await self.active():
            meta = self.keys(batch_id).meta
            got = await self.redis.hmget(meta, ["owner", "total", "completed", "failed"])
            if got[0] is None or _text(got[0]) != owner:
                continue
            total, completed, failed = (int(v or 0) for v in got[1:])
            left += max(0, total - completed - failed)
        return left
