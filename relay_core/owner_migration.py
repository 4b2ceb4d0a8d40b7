"""Moving a tenant's data from its legacy (unkeyed) owner id to its keyed one.

Earlier versions named owners by a plain SHA-256 of the gateway key. At start-up the API
moves, for each configured gateway key, what is stored under the legacy id to the keyed id
(:mod:`relay_core.owners`): the file and batch lists (and the ``owner`` of each file and
batch record), the usage days and their counters. It is idempotent: with nothing under a
legacy id (every start after the first) it costs three ``EXISTS``. A request for a legacy id
still in flight during the upgrade counts its usage under the legacy id.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from redis.asyncio import Redis

from relay_core.batch.models import FileRecord
from relay_core.batch.store.keys import BatchKeys, file_key, owner_batches, owner_files
from relay_core.usage import days_key, usage_key

log = logging.getLogger("relay.owners")

MOVE_LOCK_S = 120.0  # held while moving; a process that dies holding it frees it after this


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True, slots=True)
class OwnerMove:
    redis: Redis
    prefix: str
    old: str
    new: str

    def _lists(self) -> list[str]:
        return [
            owner_files(self.prefix, self.old),
            owner_batches(self.prefix, self.old),
            days_key(self.prefix, self.old),
        ]

    async def pending(self) -> bool:
        return self.old != self.new and bool(await self.redis.exists(*self._lists()))

    async def run(self) -> None:
        """Move what is there (read again: another process may have moved it meanwhile)."""
        files, batches, days = self._lists()
        if await self.redis.exists(files):
            await self._files()
        if await self.redis.exists(batches):
            await self._batches()
        if await self.redis.exists(days):
            await self._usage()

    async def _files(self) -> None:
        listed = owner_files(self.prefix, self.old)
        for file_id in await self.redis.zrange(listed, 0, -1):
            key = file_key(self.prefix, _text(file_id))
            raw = await self.redis.get(key)
            if raw is None:
                continue
            record = FileRecord.model_validate_json(raw)
            if record.owner == self.old:
                ttl = await self.redis.pttl(key)
                value = record.model_copy(update={"owner": self.new}).model_dump_json()
                await self.redis.set(key, value, px=ttl if ttl > 0 else None)
        await self._merge_sorted(listed, owner_files(self.prefix, self.new))

    async def _batches(self) -> None:
        listed = owner_batches(self.prefix, self.old)
        for batch_id in await self.redis.zrange(listed, 0, -1):
            meta = BatchKeys(self.prefix, _text(batch_id)).meta
            owner = await self.redis.hget(meta, "owner")
            if owner is not None and _text(owner) == self.old:
                await self.redis.hset(meta, "owner", self.new)
        await self._merge_sorted(listed, owner_batches(self.prefix, self.new))

    async def _usage(self) -> None:
        old_days, new_days = days_key(self.prefix, self.old), days_key(self.prefix, self.new)
        for raw_day in await self.redis.smembers(old_days):
            day = _text(raw_day)
            old, new = usage_key(self.prefix, self.old, day), usage_key(self.prefix, self.new, day)
            if not await self.redis.exists(old) or await self.redis.renamenx(old, new):
                continue  # expired, or moved whole
            counts = await self.redis.hgetall(old)
            async with self.redis.pipeline(transaction=True) as pipe:
                for field, n in counts.items():
                    pipe.hincrby(new, _text(field), int(n))
                pipe.delete(old)
                await pipe.execute()
        if not await self.redis.renamenx(old_days, new_days):
            days = await self.redis.smembers(old_days)
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.sadd(new_days, *days)
                pipe.delete(old_days)
                await pipe.execute()

    async def _merge_sorted(self, old: str, new: str) -> None:
        if await self.redis.renamenx(old, new):
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zunionstore(new, [new, old], aggregate="MIN")
            pipe.delete(old)
            await pipe.execute()


async def move_legacy_owners(redis: Redis, prefix: str, moves: dict[str, str]) -> None:
    """Move the data of each legacy id in ``moves`` (legacy id -> keyed id). API processes
    starting together take turns (a Redis lock): the first moves, the others find nothing."""
    every = [OwnerMove(redis, prefix, old, new) for old, new in moves.items()]
    pending = [move for move in every if await move.pending()]
    if not pending:
        return
    async with redis.lock(
        f"{prefix}:owners:moving", timeout=MOVE_LOCK_S, blocking_timeout=MOVE_LOCK_S
    ):
        for move in pending:
            await move.run()
            log.warning(
                "moved a tenant's files, batches and usage to its keyed owner id %s", move.new
            )
