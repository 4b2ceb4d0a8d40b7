"""What routing one request costs the API, in process: ``meta-model`` over ten providers.

    .venv/bin/python -m bench.routing [--requests 2000]

The API's own steps before a request is queued, on the real Redis at 127.0.0.1:6379: resolve
the candidates (ten providers, two models each), fit them to the request, profile it, read
their live state (limits and breakers) and what they learned for its task family, rank them
(docs/routing.md). Timed per request, with the live state read for every
request (``RELAY_ROUTING_STATE_TTL_S=0``) and with the default snapshot (0.25 s). The target is
<= 1 ms per request. Prints and returns a JSON-able dict.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from typing import Any

from redis.asyncio import Redis

from bench.harness import percentile
from relay_core.breaker import Breaker
from relay_core.breaker import RedisBackend as BreakerRedis
from relay_core.catalogue.models import ProviderConfig
from relay_core.context.prepare import fit_candidates
from relay_core.limits import Limiter, RedisBackend
from relay_core.profile import profile_request
from relay_core.routing.live import LiveCache
from relay_core.routing.outcomes import OutcomeCache, OutcomeStore
from relay_core.routing.ranking import Ranker
from relay_core.routing.targets import Selection, resolve_targets
from relay_core.schemas.chat import ChatCompletionRequest
from relay_core.settings import Settings

REDIS_URL = "redis://127.0.0.1:6379/0"
PROVIDERS = 10


def catalogue() -> list[ProviderConfig]:
    return [
        ProviderConfig.model_validate(
            {
                "name": f"p{i}",
                "api": "openai",
                "base_url": f"http://127.0.0.1:9/p{i}/v1",
                "limits": {"rpm": 30, "tpm": 6000, "rpd": 1000},
                "models": [{"id": f"p{i}-small"}, {"id": f"p{i}-large"}],
            }
        )
        for i in range(PROVIDERS)
    ]


async def route_many(n: int, ttl_s: float) -> list[float]:
    prefix = f"benchroute{uuid.uuid4().hex[:8]}"
    settings = Settings(key_prefix=prefix, routing_state_ttl_s=ttl_s)
    redis = Redis.from_url(REDIS_URL)
    limiter = Limiter.from_settings(settings, RedisBackend(redis))
    breaker = Breaker.from_settings(settings, BreakerRedis(redis))
    live = LiveCache(limiter, breaker, ttl_s)
    ranker = Ranker(settings.strategy, settings.mode, explore=settings.routing_explore)
    store = OutcomeStore(redis, prefix)
    outcomes = OutcomeCache(store, ttl_s)
    # Every target has a learned record for the family, as in a farm that has run a while.
    records = {
        ("chat", f"p{i}/p{i}-{size}"): {"s": 40, "f": 2, "h3": 40}
        for i in range(PROVIDERS)
        for size in ("small", "large")
    }
    await store.record(records, time.time())
    providers = catalogue()
    body = ChatCompletionRequest.model_validate(
        {"model": "meta-model", "messages": [{"role": "user", "content": "route me " * 20}]}
    )
    spent: list[float] = []
    try:
        for _ in range(n):
            t = time.perf_counter()
            sel = Selection(model=body.model)
            targets = resolve_targets(
                providers, sel, mode=settings.mode, meta_model=settings.meta_model
            )
            targets, costs = await fit_candidates(body, targets, lambda x: x.model, settings)
            profile = profile_request(body, message_tokens=costs)
            learned = await outcomes.stats(profile.family.value)
            route = ranker.route(targets, await live.states(targets), learned, profile)
            live.sent(route.targets[0])
            spent.append(time.perf_counter() - t)
    finally:
        await store.forget(["chat"])
        await redis.aclose()
    return spent


def summary(spent: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(spent, 50) * 1000, 3),
        "p99_ms": round(percentile(spent, 99) * 1000, 3),
        "mean_ms": round(sum(spent) / len(spent) * 1000, 3),
    }


def run(n: int = 2000) -> dict[str, Any]:
    fresh = asyncio.run(route_many(n, 0.0))
    cached = asyncio.run(route_many(n, 0.25))
    return {
        "providers": PROVIDERS,
        "targets": PROVIDERS * 2,
        "requests": n,
        "read_every_request": summary(fresh),
        "snapshot_0_25_s": summary(cached),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    print(json.dumps(run(parser.parse_args().requests), indent=2))


if __name__ == "__main__":
    main()
