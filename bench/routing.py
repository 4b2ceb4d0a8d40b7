"""What routing one request costs the API, in process: ``meta-model`` over ten providers.

    .venv/bin/python -m bench.routing [--requests 2000]

The API's own steps before a request is queued, on the real Redis at 127.0.0.1:6379: resolve
the candidates (ten providers, two models each), fit them to the request, profile it, read
their live state (limits and breakers) and what they learned for its task family, rank them
(docs/routing.md). Timed per request, with the live state read for every
request (``RELAY_ROUTING_STATE_TTL_S=0``) and with the default snapshot (0.25 s), then with
the snapshot and three routing policies (two fire: an exclusion with a preference, and a cap)
and with the route audit built and encoded as the API does after each answer. The target is
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
from relay_api.audit import build_audit
from relay_api.routing import Routing
from relay_core.breaker import Breaker
from relay_core.breaker import RedisBackend as BreakerRedis
from relay_core.catalogue.models import ProviderConfig
from relay_core.context.prepare import fit_candidates
from relay_core.dispatch.envelope import Candidate, Envelope, Reply
from relay_core.limits import Limiter, RedisBackend
from relay_core.policy.apply import admit, capped, preferred_first
from relay_core.policy.models import Policy
from relay_core.policy.ruling import NOTHING, Facts, decide
from relay_core.profile import profile_request
from relay_core.routing.audit import encode
from relay_core.routing.live import LiveCache
from relay_core.routing.outcomes import OutcomeCache, OutcomeStore
from relay_core.routing.ranking import Ranker
from relay_core.routing.targets import Selection, Target, resolve_targets
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


POLICIES = [
    Policy.model_validate(p)
    for p in (
        {"name": "no-p9", "exclude": {"providers": ["p9"]}, "prefer": {"providers": ["p0"]}},
        {"name": "json-only", "match": {"needs": ["json_output"]}, "require": {"tier": "paid"}},
        {"name": "short", "match": {"model": "meta-*"}, "cap": {"max_tokens": 256}},
    )
]


async def route_many(
    n: int, ttl_s: float, policies: list[Policy] | None = None, audit: bool = False
) -> list[float]:
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
            ruling = NOTHING
            request = body
            if policies:
                ruling = decide(policies, Facts(body.model, profile, "kowner", {}))
                targets = admit(ruling, targets, settings.mode)
                request, profile = capped(ruling, body, profile)
            learned = await outcomes.stats(profile.family.value)
            states = await live.states(targets)
            route = ranker.route(targets, states, learned, profile)
            ranked = preferred_first(ruling, route.targets)
            live.sent(ranked[0])
            if audit:
                routing = Routing(
                    request,
                    ranked,
                    costs,
                    profile,
                    "",
                    settings.mode,
                    ruling,
                    targets,
                    states,
                    route,
                )
                encode(build_audit(envelope(request, ranked), routing, ANSWERED, None))
            spent.append(time.perf_counter() - t)
    finally:
        await store.forget(["chat"])
        await redis.aclose()
    return spent


ANSWERED = Reply(id="chatcmpl-0", ok=True, provider="p0", model="p0-small")


def envelope(request: ChatCompletionRequest, ranked: list[Target]) -> Envelope:
    candidates = [Candidate(provider=t.provider.name, model=t.model.id) for t in ranked]
    return Envelope(
        id="chatcmpl-0", request=request, candidates=candidates, deadline=1e10, owner="kowner"
    )


def summary(spent: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(spent, 50) * 1000, 3),
        "p99_ms": round(percentile(spent, 99) * 1000, 3),
        "mean_ms": round(sum(spent) / len(spent) * 1000, 3),
    }


def run(n: int = 2000) -> dict[str, Any]:
    fresh = asyncio.run(route_many(n, 0.0))
    cached = asyncio.run(route_many(n, 0.25))
    ruled = asyncio.run(route_many(n, 0.25, POLICIES))
    audited = asyncio.run(route_many(n, 0.25, POLICIES, audit=True))
    return {
        "providers": PROVIDERS,
        "targets": PROVIDERS * 2,
        "requests": n,
        "read_every_request": summary(fresh),
        "snapshot_0_25_s": summary(cached),
        "snapshot_with_policies": summary(ruled),
        "snapshot_with_policies_and_audit": summary(audited),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    print(json.dumps(run(parser.parse_args().requests), indent=2))


if __name__ == "__main__":
    main()
