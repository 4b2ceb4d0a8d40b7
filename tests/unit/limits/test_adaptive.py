"""Concurrency learned by AIMD (issue 16, item 6): the arithmetic, then one contract on the
memory and Redis stores (grow only while the cap binds, one cut per generation of calls,
shared by every worker), and the plan capped by what was learned."""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from relay_core.catalogue.models import Limits, ModelConfig
from relay_core.limits import Limiter, MemoryBackend, RedisBackend
from relay_core.limits.adaptive import (
    CEILING,
    DECREASE,
    FLOOR,
    FREE,
    HOLD,
    INCREASE,
    NEAR,
    PROBE,
    SLOW_START,
    START,
    AdaptiveCaps,
    AdaptiveStore,
    MemoryAdaptive,
    RedisAdaptive,
    adaptive_scopes,
    cut,
    grown,
    step,
)
from tests.unit.limits._catalogue import model, provider
from tests.unit.limits._support import REDIS_URL, drop_prefix
from tests.unit.limits._support import START as T0

ADAPTIVE = Limits(adaptive_concurrency=True)


def test_growth_after_a_cut_is_additive_and_only_while_the_cap_binds() -> None:
    def after_cut(limit: float, leases: int) -> float:  # a cut seen, nothing holding it back
        return grown(limit, leases, peak=300.0, since=0)

    assert after_cut(8.0, 8) == pytest.approx(8.0 + INCREASE / 8)
    assert after_cut(8.0, 7) == pytest.approx(8.0 + INCREASE / 8)  # one slot of slack
    assert after_cut(8.0, 3) == 8.0  # light traffic says nothing about the limit
    assert after_cut(CEILING, 1000) == CEILING
    # About INCREASE per round of ``limit`` successes.
    limit = 10.0
    for _ in range(10):
        limit = after_cut(limit, 100)
    assert limit == pytest.approx(10.0 + INCREASE, rel=0.1)


def test_a_free_limit_grows_in_slow_start_by_a_share_of_itself_per_round() -> None:
    # Nothing cut it yet (the defaults), or its probe held: SLOW_START a binding success.
    assert grown(8.0, 8) == pytest.approx(8.0 + SLOW_START)
    assert grown(8.0, 3) == 8.0  # still only while the cap binds
    assert grown(8.0, 7) == pytest.approx(8.0 + SLOW_START)  # one slot of slack
    assert grown(CEILING - 0.5, 1000) == CEILING
    limit = 6.0
    for _ in range(6):  # one round of ``limit`` calls
        limit = grown(limit, 1000, since=FREE)
    assert limit == pytest.approx(6.0 * (1 + SLOW_START))
    # Once the probe held (``FREE`` binding successes after the cut): slow at the slot
    # count that failed, in full NEAR times past it, in proportion between.
    assert step(6.0, peak=6.0, since=FREE) == pytest.approx(INCREASE / 6.0)
    half = 6.0 * (1 + NEAR / 2)
    assert step(half, peak=6.0, since=FREE) == pytest.approx(INCREASE / half + SLOW_START / 2)
    far = 6.0 * (1 + 2 * NEAR)
    assert step(far, peak=6.0, since=FREE) == pytest.approx(INCREASE / far + SLOW_START)
    assert grown(6.25, 6, peak=6.25, since=FREE) == pytest.approx(6.25 + INCREASE / 6.25)
    # During the hold and the probe, the slow additive growth under the cap that failed.
    assert grown(4.5, 6, peak=6.0, since=0) == pytest.approx(4.5 + INCREASE / 4.5)
    assert grown(6.0, 6, peak=6.0, since=HOLD) == pytest.approx(6.25)
    # The probe counts only successes with the probed slot in use.
    assert grown(6.25, 5, peak=6.0, since=HOLD + 1) == 6.25


def test_a_raised_limit_is_found_within_a_hold_and_a_few_rounds() -> None:
    """The 5 -> 20 phase of bench/aimd.py, in arithmetic: cut at 6 slots, the hold, the probe
    at 6 holds (the hidden limit rose), then slow start to within 25 % of 20."""
    limit, peak, since, calls = cut(6.25), 6.25, 0, 0
    while limit < 15:
        limit, since, calls = grown(limit, 1000, peak, since), since + 1, calls + 1
    # 4.7 -> 6 under the cap (a few calls), the hold and probe, then 6.25 -> 15 in slow start.
    assert calls <= HOLD + PROBE + 5 + math.ceil((15 - 6.25) / SLOW_START), calls


def test_past_a_limit_that_was_not_raised_growth_stays_slow() -> None:
    """A probe at 21 slots that passed though the provider's limit is 20 (the leases count
    a call a little before and after the provider does): after it, the limit climbs a slot
    in about a round, not half a round's worth of slots a round."""
    limit, calls = 21.25, 0
    while limit < 22.25:
        limit, calls = grown(limit, 1000, peak=21.25, since=FREE), calls + 1
    assert calls >= 8, calls


def test_a_cut_is_multiplicative_and_never_below_the_floor() -> None:
    assert cut(20.0) == pytest.approx(20.0 * DECREASE)
    limit = 20.0
    for _ in range(50):
        limit = cut(limit)
    assert limit == FLOOR


def test_only_scopes_that_ask_are_adaptive() -> None:
    plain = provider(Limits(concurrency=4), model("m1"))
    assert adaptive_scopes(plain, plain.models[0]) == []
    both = provider(ADAPTIVE, model("m1", ADAPTIVE))
    assert adaptive_scopes(both, both.models[0]) == ["prov", "prov/m1"]


@dataclass
class Farm:
    limiter: Limiter
    store: AdaptiveStore
    prefix: str

    def caps(self) -> AdaptiveCaps:
        """Another worker's view of the same store."""
        return AdaptiveCaps(self.store, self.prefix)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
async def farm(request: pytest.FixtureRequest) -> AsyncIterator[Farm]:
    prefix = f"test:adaptive:{uuid.uuid4().hex}"
    if request.param == "memory":
        backend = MemoryBackend()
        store: AdaptiveStore = MemoryAdaptive(backend)
        yield Farm(Limiter(backend, prefix, adaptive=AdaptiveCaps(store, prefix)), store, prefix)
        return
    client = Redis.from_url(REDIS_URL)
    store = RedisAdaptive(client)
    limiter = Limiter(RedisBackend(client), prefix, adaptive=AdaptiveCaps(store, prefix))
    try:
        yield Farm(limiter, store, prefix)
    finally:
        await drop_prefix(client, prefix)
        await client.aclose()


async def _fill(limiter: Limiter, n: int, now: float) -> list[bool]:
    """Ask for ``n`` slots of the adaptive provider; which were granted."""
    p = provider(ADAPTIVE)
    plan = limiter.plan(p, p.models[0], now)
    return [(await limiter.acquire(plan, 1, f"lease-{i}", now)).granted for i in range(n)]


async def test_the_plan_is_capped_by_the_learned_limit(farm: Farm) -> None:
    granted = await _fill(farm.limiter, 12, T0)
    assert granted == [True] * int(START) + [False] * (12 - int(START))
    plain = provider(Limits(), ModelConfig(id="m1"))
    assert farm.limiter.plan(plain, plain.models[0], T0).concurrency == ()


async def test_successes_grow_the_limit_only_while_the_cap_binds(farm: Farm) -> None:
    caps = farm.limiter.adaptive
    assert caps is not None
    await caps.succeeded("prov", T0)  # nothing in flight: no growth
    assert caps.limit("prov") == START
    await _fill(farm.limiter, int(START), T0)  # the cap is full
    for _ in range(4):
        await caps.succeeded("prov", T0)
    assert caps.limit("prov") > START
    other = farm.caps()
    await other.refresh(["prov"], T0)
    assert other.limit("prov") == caps.limit("prov")


async def test_overloads_cut_once_per_generation_and_workers_share_it(farm: Farm) -> None:
    one, two = farm.caps(), farm.caps()
    assert await one.overloaded("prov", T0, T0 + 1) == pytest.approx(START * DECREASE)
    # Calls that went out before the cut fail too: the limit is cut once, not once each.
    assert await two.overloaded("prov", T0 + 0.5, T0 + 1.2) == pytest.approx(START * DECREASE)
    # A call sent after the cut that fails again: the new limit is still too high.
    assert await two.overloaded("prov", T0 + 1.5, T0 + 2) == pytest.approx(
        START * DECREASE * DECREASE
    )
    assert two.slots("prov") == math.floor(START * DECREASE * DECREASE)
    await one.refresh(["prov"], T0 + 3)
    assert one.limit("prov") == two.limit("prov")
    # The cut limit caps the plans of the worker that reads it.
    p = provider(ADAPTIVE)
    limiter = Limiter(farm.limiter.backend, farm.prefix, adaptive=one)
    (cap,) = limiter.plan(p, p.models[0], T0).concurrency
    assert cap.limit == math.floor(START * DECREASE * DECREASE)


async def test_after_a_cut_the_slot_count_that_failed_waits_out_the_hold(farm: Farm) -> None:
    caps = farm.limiter.adaptive
    assert caps is not None
    await caps.overloaded("prov", T0, T0)  # failed at 8 slots: cut to 6
    await _fill(farm.limiter, 8, T0)  # the cap binds (6 granted, and so it stays full)
    for _ in range(HOLD):
        await caps.succeeded("prov", T0)
    assert caps.limit("prov") == pytest.approx(8 - 0.001)  # just under what failed
    assert caps.slots("prov") == 7
    await _fill(farm.limiter, 8, T0)  # the 7 slots in use
    await caps.succeeded("prov", T0)  # the hold is over: the 8th slot is tried again
    assert 8 < caps.limit("prov") <= 8.25
    await _fill(farm.limiter, 10, T0)  # the cap binds at its 8 slots
    for _ in range(PROBE):  # it held: the limit grows past it, in slow start
        await caps.succeeded("prov", T0)
    assert caps.limit("prov") == pytest.approx(8.25 + step(8.25, 8.0, FREE))
    await _fill(farm.limiter, 12, T0)
    await caps.succeeded("prov", T0)
    after = 8.25 + step(8.25, 8.0, FREE)
    assert caps.limit("prov") == pytest.approx(after + step(after, 8.0, FREE))
    other = farm.caps()
    await other.refresh(["prov"], T0)
    assert other.limit("prov") == caps.limit("prov")


async def test_a_published_concurrency_caps_what_is_learned(farm: Farm) -> None:
    p = provider(Limits(adaptive_concurrency=True, concurrency=3))
    (cap,) = farm.limiter.plan(p, p.models[0], T0).concurrency
    assert cap.limit == 3
