"""Time to exhaustion of minute and daily limits at a pace, and from a plan's levels."""

from __future__ import annotations

import pytest

from relay_core.forecast.horizon import bucket_horizon, counter_horizon, horizons, scopes_of
from relay_core.forecast.spend import Spend
from relay_core.limits.quota import quota_plan
from relay_core.limits.specs import BucketSpec, Capacity, Level, Reason
from relay_core.settings import KeyQuota

RPM_60 = BucketSpec("k", rate=1.0, capacity=60.0, reason=Reason.rpm, scope="key:k")


@pytest.mark.parametrize(
    ("left", "pace", "expected"),
    [
        (60.0, 0.5, None),  # spent slower than it refills: never
        (60.0, 1.0, None),  # exactly the refill: never
        (60.0, 3.0, 30.0),  # 2 a second more than the refill: 60 left last 30 s
        (-5.0, 2.0, 0.0),  # already in debt
    ],
)
def test_a_minute_bucket_lasts_while_spent_faster_than_it_refills(
    left: float, pace: float, expected: float | None
) -> None:
    assert bucket_horizon(RPM_60, left, pace) == expected


@pytest.mark.parametrize(
    ("left", "pace", "resets_in", "expected"),
    [
        (1000.0, 1.0, 3600.0, 1000.0),
        (1000.0, 0.1, 3600.0, None),  # 10,000 s at this pace: the day resets first
        (1000.0, 0.0, 3600.0, None),  # nothing spent
        (0.0, 0.0, 3600.0, 0.0),  # used up
    ],
)
def test_a_daily_limit_lasts_what_is_left_over_the_pace_unless_the_day_ends(
    left: float, pace: float, resets_in: float, expected: float | None
) -> None:
    assert counter_horizon(left, pace, resets_in) == expected


def test_a_key_quota_plan_becomes_one_horizon_per_limit() -> None:
    now = 1_800_000_000.0
    plan = quota_plan("p", "kabc", KeyQuota(rpm=60, tpm=6000, daily_tokens=100_000), now)
    assert plan is not None and scopes_of([plan]) == ["key:kabc"]
    levels = (
        Level(Reason.rpm, "key:kabc", 30.0, 60.0),
        Level(Reason.tpm, "key:kabc", 6000.0, 6000.0),
        Level(Reason.tpd, "key:kabc", 50_000.0, 100_000.0),
    )
    spends = {"key:kabc": Spend(requests=2.0, tokens=50.0)}
    found = horizons([plan, plan], [Capacity(0.0, None, levels)] * 2, spends, now)
    by_limit = {h.limit: h for h in found}
    assert len(found) == 3  # a limit shared by two plans is shown once
    assert by_limit[Reason.rpm].exhausted_in_s == 30.0  # 30 left, 2/s against 1/s refill
    assert by_limit[Reason.rpm].pace_per_min == 120.0
    assert by_limit[Reason.tpm].exhausted_in_s is None  # 50/s against a 100/s refill
    assert by_limit[Reason.tpd].exhausted_in_s == 1000.0  # 50,000 left at 50/s
    assert by_limit[Reason.tpd].resets_in_s is not None


def test_no_quota_no_plan() -> None:
    assert quota_plan("p", "kabc", KeyQuota(), 0.0) is None
