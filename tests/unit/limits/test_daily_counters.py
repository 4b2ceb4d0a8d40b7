"""Contract: daily counters (RPD/TPD) reset at the provider's instant, UTC or Pacific."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from relay_core.catalogue.models import Limits
from relay_core.limits import Limiter, Reason
from tests.unit.limits._catalogue import model, provider


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()


async def _take_all(limiter: Limiter, limits: Limits, now: float, count: int) -> None:
    prov = provider(limits)
    for _ in range(count):
        plan = limiter.plan(prov, prov.models[0], now)
        assert (await limiter.acquire(plan, 1, "l", now)).granted


async def _try(limiter: Limiter, limits: Limits, now: float, cost: int = 1):
    prov = provider(limits)
    return await limiter.acquire(limiter.plan(prov, prov.models[0], now), cost, "l", now)


@pytest.mark.parametrize(
    ("daily_reset", "before", "reset"),
    [
        ("00:00 UTC", at(2025, 1, 15, 23, 59), at(2025, 1, 16)),
        ("06:30 UTC", at(2025, 1, 15, 6, 29), at(2025, 1, 15, 6, 30)),
        ("00:00 America/Los_Angeles", at(2025, 1, 15, 7, 59), at(2025, 1, 15, 8)),  # PST
        ("00:00 America/Los_Angeles", at(2025, 7, 15, 6, 59), at(2025, 7, 15, 7)),  # PDT
        ("00:00 US/Pacific", at(2025, 7, 15, 6, 59), at(2025, 7, 15, 7)),
    ],
)
async def test_requests_per_day_reset_at_the_instant(
    limiter: Limiter, daily_reset: str, before: float, reset: float
):
    limits = Limits(rpd=2, daily_reset=daily_reset)
    await _take_all(limiter, limits, before, 2)
    refused = await _try(limiter, limits, before)
    assert (refused.granted, refused.reason) == (False, Reason.rpd)
    assert refused.wait_s == pytest.approx(reset - before)
    almost = await _try(limiter, limits, reset - 0.5)
    assert not almost.granted
    assert almost.wait_s == pytest.approx(0.5)
    assert (await _try(limiter, limits, reset)).granted


async def test_a_plan_built_before_the_reset_says_come_back_soon(limiter: Limiter):
    limits = Limits(rpd=1)
    prov = provider(limits)
    stale = limiter.plan(prov, prov.models[0], at(2025, 1, 15, 23, 59))
    assert (await limiter.acquire(stale, 0, "l", at(2025, 1, 15, 23, 59))).granted
    late = await limiter.acquire(stale, 0, "l", at(2025, 1, 16, 0, 1))
    assert (late.granted, late.reason) == (False, Reason.rpd)
    assert 0 < late.wait_s <= 0.05  # rebuild the plan: the new day's key is empty


async def test_tokens_per_day_count_the_cost(limiter: Limiter):
    limits = Limits(tpd=1000)
    now = at(2025, 1, 15, 12)
    assert (await _try(limiter, limits, now, cost=600)).granted
    refused = await _try(limiter, limits, now, cost=600)
    assert (refused.granted, refused.reason) == (False, Reason.tpd)
    assert refused.wait_s == pytest.approx(12 * 3600)
    assert (await _try(limiter, limits, now, cost=400)).granted
    assert not (await _try(limiter, limits, now, cost=1)).granted


async def test_a_request_larger_than_the_daily_limit_needs_an_unused_day(limiter: Limiter):
    limits = Limits(tpd=1000)
    day1, day2 = at(2025, 1, 15, 12), at(2025, 1, 16, 12)
    assert (await _try(limiter, limits, day1, cost=1)).granted
    assert not (await _try(limiter, limits, day1, cost=5000)).granted
    assert (await _try(limiter, limits, day2, cost=5000)).granted
    assert not (await _try(limiter, limits, day2, cost=1)).granted


async def test_model_and_provider_days_are_counted_separately(limiter: Limiter):
    prov = provider(Limits(rpd=3), model("a", Limits(rpd=1)), model("b"))
    now = at(2025, 1, 15, 12)
    plan_a, plan_b = (limiter.plan(prov, m, now) for m in prov.models)
    assert (await limiter.acquire(plan_a, 0, "l", now)).granted
    assert (await limiter.acquire(plan_a, 0, "l", now)).reason is Reason.rpd  # a's own limit
    assert (await limiter.acquire(plan_b, 0, "l", now)).granted
    assert (await limiter.acquire(plan_b, 0, "l", now)).granted  # provider's 3rd
    assert (await limiter.acquire(plan_b, 0, "l", now)).reason is Reason.rpd
