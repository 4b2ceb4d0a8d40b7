"""Rates learned from 429s: multiplicative decrease, quick return, slow probe (issue 13, 4)."""

from __future__ import annotations

import pytest

from relay_core.catalogue.models import ModelConfig, ProviderConfig
from relay_core.limits import Limiter, MemoryBackend
from relay_core.limits.learned import (
    CONFIRM_S,
    DECREASE,
    FAST_PER_S,
    FLOOR,
    HOLD_S,
    SLOW_PER_S,
    TARGET,
    Learned,
    LearnedRates,
    MemoryLearned,
)

T0 = 1_000_000.0


def test_a_429_lowers_the_factor_then_it_climbs_back_quickly_then_slowly() -> None:
    after = Learned().after_429(T0)
    assert after.factor(T0) == pytest.approx(DECREASE)
    fast_s = (TARGET - DECREASE) / FAST_PER_S
    assert after.factor(T0 + fast_s / 2) == pytest.approx((DECREASE + TARGET) / 2)
    assert after.factor(T0 + fast_s) == pytest.approx(TARGET)
    assert after.factor(T0 + fast_s + 10) == pytest.approx(TARGET + 10 * SLOW_PER_S)
    assert after.factor(T0 + 10_000) == 1.0


def test_repeated_429s_converge_under_a_hidden_limit_and_never_below_the_floor() -> None:
    learned, now = Learned(), T0
    for _ in range(50):
        learned = learned.after_429(now)
        now += 1
    assert learned.factor(now) >= FLOOR
    assert learned.base == pytest.approx(FLOOR)


async def test_the_factor_scales_the_plans_rpm_and_tpm_buckets() -> None:
    rates = LearnedRates(MemoryLearned(), "t")
    limiter = Limiter(MemoryBackend(), "t", rates)
    provider = ProviderConfig(
        name="p",
        api="openai",
        base_url="https://p.example.com/v1",
        limits={"rpm": 600, "tpm": 60_000, "rpd": 1000},
        models=[ModelConfig(id="m")],
    )
    before = limiter.plan(provider, provider.models[0], T0)
    assert await rates.rate_limited("p", T0 - 1) == 1.0  # a lone 429: noted, nothing lowered
    assert await rates.rate_limited("p", T0) == pytest.approx(DECREASE)
    after = limiter.plan(provider, provider.models[0], T0)
    for old, new in zip(before.buckets, after.buckets, strict=True):
        assert new.rate == pytest.approx(old.rate * DECREASE)
    assert after.counters == before.counters  # daily caps are not scaled


async def test_a_burst_of_429s_from_calls_in_flight_lowers_once_and_workers_share_it() -> None:
    store = MemoryLearned()
    one, two = LearnedRates(store, "t"), LearnedRates(store, "t")
    assert await two.rate_limited("p", T0 - 1) == 1.0  # the first: lone, for all it knows
    assert await one.rate_limited("p", T0) == pytest.approx(DECREASE)
    # Another worker's 429 from a call sent before the decrease: it takes the shared figure.
    assert await two.rate_limited("p", T0 + HOLD_S / 2) == pytest.approx(
        Learned().after_429(T0).factor(T0 + HOLD_S / 2)
    )
    await two.refresh(["p"], T0 + 5)
    assert two.factor("p", T0 + 5) == one.factor("p", T0 + 5)
    # Past the hold, a new 429 lowers it again.
    assert await one.rate_limited("p", T0 + HOLD_S + 1) < DECREASE


async def test_a_lone_429_lowers_nothing_and_one_soon_after_another_does() -> None:
    """A call that reached a per-second window a few ms early is refused although nothing is
    hidden: that 429 alone costs its pause, not the provider's rate for minutes."""
    rates = LearnedRates(MemoryLearned(), "t")
    assert await rates.rate_limited("p", T0) == 1.0
    # The next 429 long after: lone again.
    assert await rates.rate_limited("p", T0 + CONFIRM_S + 1) == 1.0
    # One within CONFIRM_S of it: a hidden limit, lowered.
    assert await rates.rate_limited("p", T0 + CONFIRM_S + 3) == pytest.approx(DECREASE)
