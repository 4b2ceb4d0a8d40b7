"""Which worker holds which request, so that a request whose worker died is sent again soon.

With ``acks_late`` a message taken by a worker that dies (SIGKILL, OOM, a lost machine) stays
in the broker's unacked set until the visibility timeout puts it back: minutes, while its client
waits for a reply that will not come. So each worker process says what it holds:

* it keeps the ids of the messages it received and has not finished (from Celery's
  ``task_received`` to the end of the task: exactly its unacked messages, delayed re-tries
  included) in a :class:`HeldSet`;
* it writes them, as a :class:`HoldRecord` whose ``seq`` moves at every write, under its name in
  the hash ``{prefix}:holds``, every ``RELAY_REDELIVER_AFTER_S / 3`` and soon after it takes a
  new message;
* an API process waiting on requests reads the hash once a second (:class:`HolderWatch`): when
  the worker last seen holding a request has not moved its ``seq`` for ``RELAY_REDELIVER_AFTER_S``
  the worker is taken for dead and the request is published again (a worker that stops
  cleanly drops its entry after handing its messages back to their queues: not a loss);
* so is a request whose message a worker took (kombu keeps it in its ``unacked`` hash under the
  delivery tag the API chose) that no live worker lists for as long: a worker that died within
  moments of taking it, before it could say so;
* the batch lines a dead worker held are sent again by a live worker
  (:mod:`relay_core.batch.run.orphans`), which first takes the dead one's record for itself
  (:func:`claim_orphaned` marks it ``orphaned_at``, same ``seq``: still dead to every reader).
  Only a record so marked is dropped (by the API, or by a worker once it is old), so a dead
  worker's batch lines are never left to the line timeout because an API tidied up first.

A worker that was only stalled may still answer: a reply is written once (``SET NX``, see
:mod:`relay_core.dispatch.replies`), so the later of two answers is dropped and the client gets
exactly one.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel, ValidationError
from redis.asyncio import Redis

HOLD_WRITE_SOON_S = 0.05  # a new message is in the hash this soon (writes are coalesced)
# kombu's Redis transport keeps each received, unacknowledged message in this hash, by its
# delivery tag (its ``unacked_key`` transport option, which Relay leaves at the default).
KOMBU_UNACKED = "unacked"


def holds_key(prefix: str) -> str:
    return f"{prefix}:holds"


class HoldRecord(BaseModel):
    seq: int
    ids: list[str]
    # Set by the live worker that took a dead one's batch lines (see claim_orphaned).
    orphaned_at: float | None = None


# KEYS: the holds hash. ARGV: the worker, its record as read, the record marked orphaned.
# 1 when this caller marked it (the record had not moved nor been marked), else 0.
_CLAIM = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""


class HeldSet:
    """The ids of the messages one worker process holds (a multiset: the same id can be held
    twice for a moment, when a visit hands its envelope on and the next copy arrives here).
    Safe to use from any thread; ``on_change`` is called on each new id."""

    def __init__(self, on_change: Callable[[], None] = lambda: None) -> None:
        self._ids: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.on_change = on_change

    def take(self, request_id: str) -> None:
        with self._lock:
            self._ids[request_id] += 1
        self.on_change()

    def release(self, request_id: str) -> None:
        with self._lock:
            self._ids[request_id] -= 1
            if self._ids[request_id] <= 0:
                del self._ids[request_id]

    def ids(self) -> list[str]:
        with self._lock:
            return sorted(self._ids)


async def write_holds(redis: Redis, prefix: str, worker: str, record: HoldRecord) -> None:
    await redis.hset(holds_key(prefix), worker, record.model_dump_json())


async def read_holds(redis: Redis, prefix: str) -> dict[str, HoldRecord]:
    raw = await redis.hgetall(holds_key(prefix))
    out: dict[str, HoldRecord] = {}
    for name, value in raw.items():
        worker = name.decode() if isinstance(name, bytes) else str(name)
        try:
            out[worker] = HoldRecord.model_validate_json(value)
        except ValidationError:  # a newer or broken writer: ignore its entry
            continue
    return out


async def taken(redis: Redis, tags: Collection[str]) -> set[str]:
    """The delivery ``tags`` whose messages a worker took and has not acknowledged."""
    if not tags:
        return set()
    order = list(tags)
    async with redis.pipeline(transaction=False) as pipe:
        for tag in order:
            pipe.hexists(KOMBU_UNACKED, tag)
        found = await pipe.execute()
    return {tag for tag, hit in zip(order, found, strict=True) if hit}


async def drop_holds(redis: Redis, prefix: str, workers: Collection[str]) -> None:
    if workers:
        await redis.hdel(holds_key(prefix), *workers)


async def claim_orphaned(
    redis: Redis, prefix: str, worker: str, record: HoldRecord, now: float
) -> bool:
    """Take the dead ``worker``'s ``record`` (as read) for the caller: True for exactly one
    caller, who then sends its batch lines again."""
    marked = record.model_copy(update={"orphaned_at": now})
    args = [worker, record.model_dump_json(), marked.model_dump_json()]
    script = redis.register_script(_CLAIM)
    return bool(await script(keys=[holds_key(prefix)], args=args))


@dataclass
class HolderWatch:
    """The API's view of the holds: which of its waiting requests lost their worker.

    Pure bookkeeping (the caller reads the hash and publishes): feed it each reading with
    :meth:`lost`, on a monotonic clock."""

    after_s: float
    _seen: dict[str, tuple[int, float]] = field(default_factory=dict)  # worker -> seq, since
    _holder: dict[str, str] = field(default_factory=dict)  # request id -> its last holder
    _unlisted: dict[str, float] = field(default_factory=dict)  # taken, listed by none, since

    def dead(self, holds: Mapping[str, HoldRecord], now: float) -> set[str]:
        """The workers in ``holds`` whose ``seq`` has not moved for ``after_s``."""
        for worker, record in holds.items():
            seen = self._seen.get(worker)
            if seen is None or seen[0] != record.seq:
                self._seen[worker] = (record.seq, now)
        for gone in set(self._seen) - set(holds):
            del self._seen[gone]
        return {w for w, (_seq, since) in self._seen.items() if now - since >= self.after_s}

    def unheld(self, waiting: Collection[str], holds: Mapping[str, HoldRecord]) -> list[str]:
        """The ``waiting`` requests no live worker lists (whose messages to look up)."""
        live = self._live(holds)
        return [i for i in waiting if i not in live]

    def lost(
        self,
        waiting: Collection[str],
        holds: Mapping[str, HoldRecord],
        now: float,
        taken: Collection[str] = (),
    ) -> tuple[list[str], set[str]]:
        """The ``waiting`` requests to publish again: their last holder is dead, or their
        message was ``taken`` by a worker yet no live worker listed it for ``after_s``. A
        holder whose entry is gone stopped cleanly and handed its messages back to their
        queues: its requests are lost only if their messages stay taken and unlisted.
        And the dead workers (whose entries may be dropped)."""
        dead = self.dead(holds, now)
        live_holder = self._live(holds, dead)
        lost: list[str] = []
        for request_id in waiting:
            holder = live_holder.get(request_id)
            if holder is not None:
                self._holder[request_id] = holder
                self._unlisted.pop(request_id, None)
                continue
            last = self._holder.pop(request_id, None)
            if last is not None and last in dead:
                lost.append(request_id)
            elif request_id in taken:  # a holder that stopped cleanly handed it back first
                since = self._unlisted.setdefault(request_id, now)
                if now - since >= self.after_s:
                    lost.append(request_id)
            # else: not taken yet (queued), or its live holder let go of it (it was answered,
            # or handed on to another queue, where a holder will show up)
        for request_id in lost:
            self._unlisted.pop(request_id, None)
        for table in (self._holder, self._unlisted):
            for gone in set(table) - set(waiting):
                del table[gone]
        return lost, dead

    def _live(self, holds: Mapping[str, HoldRecord], dead: Collection[str] = ()) -> dict[str, str]:
        return {i: w for w, r in holds.items() if w not in dead for i in r.ids}
