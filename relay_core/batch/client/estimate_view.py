"""What ``POST /v1/batches/estimate`` reads of the farm: the limiter's plans and levels for
every target, which targets are healthy and served, what the caller's lines cost upstream so
far (its usage), and the answer time its running batches measured."""

from __future__ import annotations

import time
from collections.abc import Sequence

from redis.asyncio import Redis

from relay_core.batch.client.estimate import FarmView
from relay_core.batch.run.planner import healthy
from relay_core.batch.store.store import BatchStore
from relay_core.breaker import Breaker
from relay_core.limits import Limiter
from relay_core.routing.live import live_limits
from relay_core.routing.targets import Target
from relay_core.usage import UsageRow, day_of, read_usage

MIN_ANSWERS = 5  # answered calls of a model before its token costs count as learned


def learned_costs(rows: Sequence[UsageRow]) -> dict[str, tuple[float, float]]:
    """Mean prompt and completion tokens per answered call, per ``provider/model``."""
    sums: dict[str, list[int]] = {}
    for r in rows:
        entry = sums.setdefault(f"{r.provider}/{r.model}", [0, 0, 0])
        entry[0] += r.prompt_tokens
        entry[1] += r.completion_tokens
        entry[2] += max(0, r.requests - r.errors - r.rate_limited)
    return {k: (p / n, c / n) for k, (p, c, n) in sums.items() if n >= MIN_ANSWERS}


async def answer_time_s(store: BatchStore, owner: str) -> float | None:
    """The mean answer time the owner's running batches measured (None: none has one)."""
    found = []
    for batch_id in await store.active():
        batch = await store.batch(batch_id)
        if batch is not None and batch.owner == owner and batch.upstream_s > 0:
            found.append(batch.upstream_s)
    return sum(found) / len(found) if found else None


async def read_view(
    targets: Sequence[Target],
    *,
    limiter: Limiter,
    breaker: Breaker,
    served: set[str] | None,
    redis: Redis,
    prefix: str,
    owner: str,
    answer_s: float | None,
) -> FarmView:
    now = time.time()
    read = await live_limits(targets, limiter, breaker, now)  # one peek, one breaker read
    plans = {t.key: plan for t, (_, plan, _) in zip(targets, read, strict=True)}
    levels = [cap for _, _, cap in read]
    live = {t.key: state for t, (state, _, _) in zip(targets, read, strict=True)}
    rows = [
        *await read_usage(redis, prefix, owner, day=day_of(now - 86_400)),
        *await read_usage(redis, prefix, owner, day=day_of(now)),
    ]
    store = BatchStore(redis, prefix)
    return FarmView(
        plans=plans,
        levels=dict(zip(plans, levels, strict=True)),
        able={t.key for t in healthy(targets, live, served)},
        now=now,
        learned=learned_costs(rows),
        answer_s=answer_s or await answer_time_s(store, owner),
    )
