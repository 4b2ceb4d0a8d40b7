"""Slots a worker needs: Little's law on the providers' rates and the measured slot times."""

from __future__ import annotations

import pytest

from relay_core.catalogue.models import ProviderConfig
from relay_core.dispatch.capacity import (
    HEADROOM,
    UNLIMITED_RPS,
    Recent,
    SlotTimes,
    provider_rate,
    slots_needed,
)
from relay_workers.elastic import SHRINK_AFTER_S, Elastic


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def provider(rpm: int | None, *model_rpms: int | None) -> ProviderConfig:
    models = [
        {"id": f"m{i}", "limits": {"rpm": r} if r else None} for i, r in enumerate(model_rpms)
    ]
    return ProviderConfig.model_validate(
        {
            "name": "p",
            "api": "openai",
            "base_url": "http://sim.invalid/p/v1",
            "limits": {"rpm": rpm} if rpm else {},
            "models": models or [{"id": "m"}],
        }
    )


def test_provider_rate_is_its_rpm_capped_by_its_models_paced_like_the_limiter() -> None:
    assert provider_rate(provider(600)) == pytest.approx(9.8)
    assert provider_rate(provider(600, 60, 120)) == pytest.approx(180 / 60 * 0.98)
    assert provider_rate(provider(None)) == UNLIMITED_RPS


def test_recent_quantiles_keep_the_last_values() -> None:
    r = Recent(keep=100)
    for v in range(1, 201):
        r.add("p", float(v))
    assert r.count("p") == 100
    assert r.quantile("p", 0.99) == 199.0
    assert r.quantile("p", 0.5) == 150.0
    assert r.quantile("q", 0.5) is None


def test_slot_time_is_the_tail_of_visits_that_ended() -> None:
    clock = Clock()
    times = SlotTimes(clock)
    for i in range(100):
        with times.track("p"):
            clock.now += 1.0 if i < 90 else 10.0
    assert times.hold_s("p") == 1.0  # the p90
    clock.now += 0.0
    with times.track("p"):
        clock.now += 10.0
    assert times.hold_s("p") == 10.0  # one more slow one moves the p90


def test_visits_still_out_count_before_the_first_answer() -> None:
    clock = Clock()
    times = SlotTimes(clock)
    with times.track("p"), times.track("p"):
        clock.now += 3.0
        assert times.hold_s("p") == 6.0  # twice their mean age: nothing has come back yet
    assert times.hold_s("p") == 3.0


def test_slots_needed_is_rate_times_slot_time_shared_among_workers() -> None:
    clock = Clock()
    times = SlotTimes(clock)
    with times.track("slow"):
        clock.now += 10.0
    with times.track("fast"):
        clock.now += 0.1
    rates = {"slow": 20.0, "fast": 50.0}
    alone = slots_needed(rates, times, {})
    assert alone == pytest.approx((20 * 10 + 50 * 0.1) * HEADROOM)
    shared = slots_needed(rates, times, {"slow": 2, "fast": 1})
    assert shared == pytest.approx((10 * 10 + 50 * 0.1) * HEADROOM)
    capped = slots_needed(rates, times, {}, {"slow": 40, "fast": None})
    assert capped == pytest.approx((40 + 50 * 0.1) * HEADROOM)


class Needs:
    async def slots_needed(self) -> float:
        return 0.0


def test_slots_grow_at_once_within_bounds_and_shrink_after_a_sustained_lull() -> None:
    e = Elastic(object(), Needs(), base=64, bound=512)
    assert e.target(10, 0.0) == 64
    assert e.target(300.2, 0.0) == 301
    assert e.target(5000, 0.0) == 512
    e.slots = 400
    assert e.target(300, 0.0) == 400  # above half of the slots: keep them
    assert e.target(100, 1.0) == 400  # a lull begins
    assert e.target(100, 1.0 + SHRINK_AFTER_S - 1) == 400
    assert e.target(100, 1.0 + SHRINK_AFTER_S) == 100
    assert e.apply(100) is False  # no consumer yet: nothing to change
