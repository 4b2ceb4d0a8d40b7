"""Batch lines held by a dead worker: sent again seconds after its death, not at the line
timeout.

Every worker writes what it holds, batch lines included, with a sequence number that moves
every ``RELAY_REDELIVER_AFTER_S`` / 3 (:mod:`relay_core.dispatch.holds`). Each live worker's
batch loop reads those records once a second; a worker whose ``seq`` has not moved for
``RELAY_REDELIVER_AFTER_S`` is taken for dead, one live worker takes its record for itself (a
compare-and-set: exactly one does), and

* the batch lines the record lists, still in flight, are sent again at once;
* so are, one look later, the lines in flight that no live worker lists and no provider queue
  holds at two looks a second apart: a message the dead worker took in its last moments,
  before its record said so, or lines its feeder claimed and had not published yet. Two looks,
  because a live worker lists a message it just took within ~50 ms.

Both are counted as ``worker_died`` re-sends (``orphans.lua``). A worker that was only stalled
may still answer some of them: a line's outcome is recorded once per ``custom_id``, so the
later answer is dropped. A worker that stops cleanly hands its messages back and removes its
record: nothing to do. Records taken this way are dropped by the API once it saw them (or here,
after :data:`FORGET_S`, when no API is waiting on anything).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

import orjson

from relay_core.batch.run.feeder import line_of
from relay_core.batch.store.store import BatchStore
from relay_core.dispatch.holds import (
    HolderWatch,
    HoldRecord,
    claim_orphaned,
    drop_holds,
    read_holds,
)

log = logging.getLogger("relay.batch")

LOOK_EVERY_S = 1.0
FORGET_S = 60.0  # a taken record of a dead worker is dropped this long after it was taken

Lines = dict[str, list[int]]  # batch id -> line indices


def queued_ids(messages: Sequence[bytes]) -> set[str]:
    """The task ids of broker messages (Celery's protocol 2: ``headers.id``)."""
    out = set()
    for raw in messages:
        try:
            out.add(str(orjson.loads(raw)["headers"]["id"]))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            continue
    return out


@dataclass
class Orphans:
    """One worker's watch on the others' holds."""

    store: BatchStore
    me: str  # this worker's name: never taken for dead by itself
    queues: list[str]  # every provider queue (where a line's message waits to be taken)
    watch: HolderWatch
    clock: Callable[[], float] = time.monotonic
    _looked: float = field(default=float("-inf"))
    _armed: bool = False  # a death was found: look for lines nobody holds
    _suspects: dict[str, set[int]] | None = None  # nobody held these at the last look

    async def collect(self, batch_ids: Collection[str]) -> Lines:
        """At most once a second: the lines of running batches ``batch_ids`` to send again
        because the worker holding them died, each dead worker's lines to one live worker."""
        now = self.clock()
        if now - self._looked < LOOK_EVERY_S:
            return {}
        self._looked = now
        holds = await read_holds(self.store.redis, self.store.prefix)
        holds.pop(self.me, None)
        dead = self.watch.dead(holds, now)
        lines = await self._take_dead(holds, dead)
        if self._armed or self._suspects is not None:
            live = {i for w, r in holds.items() if w not in dead for i in r.ids}
            unheld = await self._unheld(batch_ids, live, lines)
            if self._suspects is not None:  # the second look: nobody held them at either
                for batch_id, indices in unheld.items():
                    lines[batch_id] += sorted(indices & self._suspects.get(batch_id, set()))
            self._suspects = unheld if self._armed else None
            self._armed = False
        return {b: sorted(set(i)) for b, i in lines.items() if i}

    async def _take_dead(self, holds: dict[str, HoldRecord], dead: set[str]) -> Lines:
        """The batch lines of each dead worker whose record this worker takes."""
        lines: Lines = defaultdict(list)
        forget = []
        for worker in sorted(dead):
            record = holds[worker]
            if record.orphaned_at is not None:
                if time.time() - record.orphaned_at >= FORGET_S:
                    forget.append(worker)
                continue
            redis, prefix = self.store.redis, self.store.prefix
            if not await claim_orphaned(redis, prefix, worker, record, time.time()):
                continue  # another live worker took it first
            found = [line for line in map(line_of, record.ids) if line is not None]
            log.warning(
                "worker %s stopped showing signs of life holding %d batch lines; sending "
                "them again",
                worker,
                len(found),
            )
            for batch_id, index in found:
                lines[batch_id].append(index)
            self._armed = True
        await drop_holds(self.store.redis, self.store.prefix, forget)
        return lines

    async def _unheld(
        self, batch_ids: Collection[str], live: set[str], taken: Lines
    ) -> dict[str, set[int]]:
        """The lines in flight that no live worker lists, no queue holds, and that are not
        being sent again already (``taken``)."""
        order = sorted(batch_ids)
        async with self.store.redis.pipeline(transaction=False) as pipe:
            for queue in self.queues:  # the queues first: a message moves on from there
                pipe.lrange(queue, 0, -1)
            for batch_id in order:
                pipe.zrange(self.store.keys(batch_id).inflight, 0, -1)
            found = await pipe.execute()
        queued = queued_ids([m for msgs in found[: len(self.queues)] for m in msgs])
        known: dict[str, set[int]] = defaultdict(set)
        for line in map(line_of, live | queued):
            if line is not None:
                known[line[0]].add(line[1])
        out = {}
        for batch_id, members in zip(order, found[len(self.queues) :], strict=True):
            flying = {int(m) for m in members}
            out[batch_id] = flying - known[batch_id] - set(taken.get(batch_id, []))
        return out
