"""Hedging: a batch line far overdue is sent again, to another candidate.

Answer times have long tails, and the last lines of a batch must not wait behind a straggler
(a call stuck on a slow replica). So when a line's call has run for far longer than its
provider's usually take — ``RELAY_BATCH_HEDGE_AFTER_P99`` times the p99 of the calls this
worker saw answered by that provider (at least :data:`MIN_SAMPLES` of them; both timed from
the line's last try, after its wait for a token, so a line waiting its turn on a busy
provider is never taken for a straggler), and never sooner than ``RELAY_BATCH_HEDGE_MIN_S`` —
a copy of the line goes to the next candidate's queue while the first call carries on.
Whichever answer comes first is recorded (``record.lua`` keeps one per ``custom_id``); the
other is thrown away and counted in the batch's ``discarded`` (a first call still out when
the copy's answer is recorded is cancelled then, freeing its slot). ``hedged`` counts the
copies sent. A copy is never hedged again, and a line is hedged at most once per visit.

Copies carry a task id whose nonce starts with ``h`` (``{batch}:{index}:h…``), so either
side knows it is one of a pair.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from redis.asyncio import Redis

from relay_core.batch.run.feeder import line_index, publish_all
from relay_core.batch.store.keys import BatchKeys
from relay_core.dispatch.capacity import Recent
from relay_core.dispatch.envelope import Envelope

MIN_SAMPLES = 20  # answers from a provider before its p99 is trusted
P99 = 0.99


def is_copy(task_id: str) -> bool:
    return task_id.rsplit(":", 1)[-1].startswith("h")


def copy_of(env: Envelope) -> Envelope:
    """The line again, aimed at its next candidate, under a task id marked as a copy."""
    batch_id = env.batch_id or ""
    task_id = f"{batch_id}:{line_index(env.id)}:h{secrets.token_hex(4)}"
    return env.model_copy(update={"id": task_id, "index": env.index + 1})


@dataclass
class Hedger:
    redis: Redis
    prefix: str
    answers: Recent  # answered visits' times per provider, as this worker saw them
    factor: float  # hedge after this many p99s (0: never)
    min_s: float  # and never sooner than this

    def after_s(self, env: Envelope) -> float | None:
        """How long ``env``'s visit may run before a copy is sent (None: never)."""
        if self.factor <= 0 or is_copy(env.id):
            return None
        provider = env.current.provider
        if self.answers.count(provider) < MIN_SAMPLES:
            return None
        p99 = self.answers.quantile(provider, P99) or 0.0
        return max(self.min_s, self.factor * p99)

    async def send(self, env: Envelope) -> None:
        """Publish a copy of ``env`` and count it in the batch's ``hedged``."""
        await publish_all(self.redis, self.prefix, [copy_of(env)])
        await self.redis.hincrby(BatchKeys(self.prefix, env.batch_id or "").meta, "hedged", 1)

    async def discarded(self, batch_id: str) -> None:
        """Count an answer thrown away because the other of its pair was recorded first."""
        await self.redis.hincrby(BatchKeys(self.prefix, batch_id).meta, "discarded", 1)
