"""Hedged requests (issue 16, item 7): the budget and the delay as arithmetic, then the
executor against a simulator: a straggler is hedged and the other provider's answer wins;
no budget, no hedge; a hedge's fast 429 leaves the primary running; never a paid hedge in
free mode."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fakeredis import aioredis

from relay_core.catalogue.models import ModelConfig, ProviderConfig, Tier
from relay_core.dispatch.envelope import RouteFlags
from relay_core.dispatch.executor import Executor
from relay_core.dispatch.hedge import (
    MAX_CREDIT,
    MIN_ANSWERS,
    HedgeBudget,
    Hedger,
    hedge_delay,
    parse_hedge,
)
from relay_core.errors import InvalidRequest, RateLimited
from relay_core.routing.outcomes import OutcomeCache, OutcomeStore
from relay_core.routing.outcomes.stats import LATENCY_EDGES, Stats
from relay_sim import SimConfig, SimServer
from tests.unit.dispatch.support import MODEL, Clock, Farm, build, done, provider_config

SLOW_MS = 3000  # a straggler: far past the learned p95 (50 ms)
LAG_MS = 300  # late enough to be hedged, soon enough to wait for


def test_the_budget_caps_hedges_at_its_share_of_calls() -> None:
    budget = HedgeBudget(ratio=0.05, failure_ceiling=0.2)
    for _ in range(1000):
        budget.observe(True)
        if budget.allows():
            budget.spend()
    assert 45 <= budget.spent <= 0.05 * 1000 + MAX_CREDIT


def test_rising_failures_stop_hedges_until_calls_succeed_again() -> None:
    budget = HedgeBudget(ratio=0.2, failure_ceiling=0.2, credit=MAX_CREDIT)
    for _ in range(5):
        budget.observe(False)
    assert not budget.allows()
    for _ in range(20):
        budget.observe(True)
    assert budget.allows()


def test_the_delay_is_the_learned_p95_once_enough_answers_were_seen() -> None:
    assert hedge_delay(None) is None
    few = Stats(5, 0, (5.0,) + (0.0,) * (len(LATENCY_EDGES) - 1))
    assert hedge_delay(few) is None
    # 90 answers under 50 ms, 10 under 800 ms: p95 is the 800 ms bucket's edge.
    many = Stats(100, 0, (90.0, 0.0, 0.0, 0.0, 10.0) + (0.0,) * (len(LATENCY_EDGES) - 5))
    assert sum(many.latency) >= MIN_ANSWERS
    assert hedge_delay(many) == LATENCY_EDGES[4]


def test_the_header_says_on_or_off_else_the_setting_stands() -> None:
    assert parse_hedge(None, False) is False
    assert parse_hedge("on", False) is True
    assert parse_hedge(" OFF ", True) is False
    with pytest.raises(InvalidRequest) as caught:
        parse_hedge("sometimes", False)
    assert caught.value.param == "x-relay-hedge"


SIM = SimConfig.model_validate(
    {
        "providers": [
            {"name": name, "api": "openai", "models": [{"id": MODEL}], **extra}
            for name, extra in (
                ("slow", {"latency_ms": SLOW_MS}),
                ("lagging", {"latency_ms": LAG_MS}),
                ("quick", {}),
                ("limited", {"rpm": 1}),
                ("pricey", {}),
            )
        ]
    }
)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer(SIM) as server:
        yield server


@pytest.fixture
async def redis() -> AsyncIterator[aioredis.FakeRedis]:
    client = aioredis.FakeRedis()
    try:
        yield client
    finally:
        await client.aclose()


def _config(sim: SimServer, name: str) -> ProviderConfig:
    config = provider_config(name, sim.base_url(name))
    if name == "pricey":
        return config.model_copy(update={"tier": Tier.paid})
    return config


async def _farm(
    sim: SimServer, http: httpx.AsyncClient, redis: aioredis.FakeRedis, *names: str
) -> Farm:
    """A farm whose executor hedges, every target having answered 20 chat requests in under
    50 ms (so the p95 is 50 ms), with one hedge in its budget."""
    farm = build(http, [_config(sim, n) for n in names], clock=Clock(None))
    store = OutcomeStore(redis, farm.settings.key_prefix)
    for name in names:
        fields = {"h0": 20, "s": 20, "t": time.time()}
        await redis.hset(
            store.key("chat"), mapping={f"{name}/{MODEL}|{k}": v for k, v in fields.items()}
        )
    latencies = OutcomeCache(store, ttl_s=0)
    farm.executor = Executor(farm.state, clock=farm.clock, sinks=[farm.sink], latencies=latencies)
    hedger = farm.executor.hedger
    assert isinstance(hedger, Hedger)
    hedger.budget.credit = 1.0
    return farm


def _calls(sim: SimServer, name: str) -> int:
    return sim.state.providers[name].counters.requests


async def test_a_straggler_is_hedged_and_the_other_providers_answer_wins(
    sim: SimServer, http: httpx.AsyncClient, redis: aioredis.FakeRedis
) -> None:
    farm = await _farm(sim, http, redis, "slow", "quick")
    before = _calls(sim, "slow"), _calls(sim, "quick")

    reply = done(
        await farm.visit(
            farm.envelope("slow", "quick", text="Hi there", flags=RouteFlags(hedge=True))
        )
    )

    assert reply.ok and reply.provider == "quick" and reply.hedged
    assert reply.completion is not None
    assert reply.completion.choices[0].message.content == "sim:quick/m1: Hi there"
    assert (_calls(sim, "slow") - before[0], _calls(sim, "quick") - before[1]) == (1, 1)
    # Only the winner's answer is booked as an answer (the straggler was cut off).
    assert [(r.provider, r.ok) for r in farm.sink.records] == [("quick", True)]
    assert farm.executor.hedger is not None and farm.executor.hedger.budget.spent == 1


async def test_without_budget_or_header_the_primary_is_awaited(
    sim: SimServer, http: httpx.AsyncClient, redis: aioredis.FakeRedis
) -> None:
    farm = await _farm(sim, http, redis, "lagging", "quick")
    before = _calls(sim, "quick")
    plain = done(await farm.visit(farm.envelope("lagging", "quick")))  # hedge not asked
    assert farm.executor.hedger is not None
    farm.executor.hedger.budget.credit = 0.0
    broke = done(await farm.visit(farm.envelope("lagging", "quick", flags=RouteFlags(hedge=True))))
    assert (plain.provider, plain.hedged, broke.provider, broke.hedged) == (
        "lagging",
        False,
        "lagging",
        False,
    )
    assert _calls(sim, "quick") == before


async def test_a_fast_429_from_the_hedge_does_not_cancel_the_primary(
    sim: SimServer, http: httpx.AsyncClient, redis: aioredis.FakeRedis
) -> None:
    farm = await _farm(sim, http, redis, "lagging", "limited")
    await farm.visit(farm.envelope("limited"))  # spends its one request a minute

    reply = done(
        await farm.visit(farm.envelope("lagging", "limited", flags=RouteFlags(hedge=True)))
    )

    assert reply.ok and reply.provider == "lagging" and not reply.hedged
    booked = [(r.provider, r.error) for r in farm.sink.records[1:]]
    assert booked == [("limited", RateLimited), ("lagging", None)]


async def test_free_mode_never_hedges_to_a_paid_provider(
    sim: SimServer, http: httpx.AsyncClient, redis: aioredis.FakeRedis
) -> None:
    farm = await _farm(sim, http, redis, "lagging", "pricey")
    before = _calls(sim, "pricey")
    reply = done(await farm.visit(farm.envelope("lagging", "pricey", flags=RouteFlags(hedge=True))))
    assert reply.provider == "lagging" and not reply.hedged
    assert _calls(sim, "pricey") == before
    assert ModelConfig(id=MODEL)  # the paid target serves the same model
