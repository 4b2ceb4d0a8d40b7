"""The lines a dead worker held, found from the workers' holds (real Redis, a controlled
clock): the ones its record lists at once, to one live worker only; the ones nobody lists and
no queue holds (taken in its last moments) one look later, if still unheld."""

from __future__ import annotations

import time

import orjson
import pytest

from relay_core.batch.run.orphans import Orphans
from relay_core.batch.store.store import BatchStore
from relay_core.dispatch.holds import HolderWatch, HoldRecord, read_holds, write_holds
from tests.integration.batch.test_store import running, store

pytestmark = pytest.mark.integration
__all__ = ["store"]  # the fixture


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def watcher(store: BatchStore, me: str, clock: Clock, queue: str) -> Orphans:
    return Orphans(store, me, [queue], HolderWatch(3.0), clock=clock)


async def test_a_dead_workers_lines_go_to_one_live_worker(store: BatchStore) -> None:
    batch_id = await running(store, 6)
    now = time.time()
    await store.claim(batch_id, now=now, rate=10, burst=6, window=6, max_n=6, due=now + 180)
    line = [f"{batch_id}:{i}:n{i}" for i in range(6)]
    queue = f"{store.prefix}.p"
    # The dead worker lists lines 0 and 1 (and a chat request); a live one lists 2 and 5;
    # line 3 waits in its queue; nobody lists line 4 (taken by the dead one as it died).
    await store.redis.lpush(queue, orjson.dumps({"headers": {"id": line[3]}}))
    dead = HoldRecord(seq=7, ids=[line[0], line[1], "chatcmpl-x"])
    await write_holds(store.redis, store.prefix, "dead", dead)
    clock = Clock()
    mine, other = watcher(store, "me", clock, queue), watcher(store, "other", clock, queue)
    seq = 0

    async def look(orphans: Orphans) -> dict[str, list[int]]:
        nonlocal seq
        seq += 1  # the live worker's sign of life moves; the dead one's does not
        await write_holds(store.redis, store.prefix, "live", HoldRecord(seq=seq, ids=line[2::3]))
        return await orphans.collect([batch_id])

    assert await look(mine) == {} and await look(other) == {}
    clock.now += 3.5
    assert await look(mine) == {batch_id: [0, 1]}  # found dead: its record's lines, at once
    assert await look(other) == {}  # the record is taken: not twice
    assert (await read_holds(store.redis, store.prefix))["dead"].orphaned_at is not None
    clock.now += 0.5
    assert await look(mine) == {}  # at most one look a second
    clock.now += 0.6
    assert await look(mine) == {batch_id: [4]}  # unheld at two looks: sent again
    clock.now += 1.1
    assert await look(mine) == {}  # nothing more
