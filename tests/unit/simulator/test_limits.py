from __future__ import annotations

import pytest

from relay_sim.config import SimLimits
from relay_sim.limits import LimitKind, LimitSet, RateSnapshot

T0 = 1_000_000.0


def test_no_limits_admit_everything():
    limits = LimitSet(SimLimits())
    for _ in range(1000):
        assert limits.check(10_000, T0) is None
        limits.take(10_000, T0)
    assert limits.snapshot(T0) == RateSnapshot()


def test_rpm_rejection_names_the_budget_and_the_wait():
    limits = LimitSet(SimLimits(rpm=2))
    limits.take(5, T0)
    limits.take(5, T0 + 15)
    rejection = limits.check(5, T0 + 20)
    assert rejection is not None
    assert rejection.kind is LimitKind.requests
    assert rejection.what == "requests per minute (RPM)"
    assert (rejection.limit, rejection.used, rejection.requested) == (2, 2, 1)
    assert rejection.retry_after_s == pytest.approx(40)
    assert "Limit 2, Used 2, Requested 1" in rejection.message("model `m`")


def test_tpm_counts_the_request_cost():
    limits = LimitSet(SimLimits(tpm=100))
    assert limits.check(100, T0) is None
    limits.take(60, T0)
    assert limits.check(40, T0) is None
    rejection = limits.check(41, T0)
    assert rejection is not None and rejection.kind is LimitKind.tokens


def test_window_s_scales_the_budget_per_window():
    # The benchmark's setting: a 1 s window holds rpm/60 requests.
    limits = LimitSet(SimLimits(rpm=300, tpm=6000), window_s=1.0)
    for i in range(5):
        assert limits.check(10, T0 + i * 0.01) is None
        limits.take(10, T0 + i * 0.01)
    rejection = limits.check(10, T0 + 0.5)
    assert rejection is not None
    assert rejection.what == "requests per 1s window (RPM)"
    assert rejection.retry_after_s == pytest.approx(0.5)
    assert limits.check(10, T0 + 1.0) is None


def test_a_tiny_budget_still_admits_one_request_per_window():
    limits = LimitSet(SimLimits(rpm=30), window_s=1.0)
    assert limits.check(1, T0) is None
    limits.take(1, T0)
    assert limits.check(1, T0 + 0.5) is not None


def test_rpd_and_tpd_are_daily():
    limits = LimitSet(SimLimits(rpd=1, tpd=1000))
    limits.take(10, T0)
    rejection = limits.check(10, T0 + 3600)
    assert rejection is not None
    assert rejection.what == "requests per day (RPD)"
    # T0 is 1970-01-12 13:46:40 UTC; the day ends at 1_036_800.
    assert rejection.retry_after_s == pytest.approx(1_036_800 - (T0 + 3600))
    assert limits.check(10, 1_036_800) is None


def test_the_longest_wait_wins():
    limits = LimitSet(SimLimits(rpm=10, rpd=1))
    limits.take(1, T0)
    rejection = limits.check(1, T0 + 1)
    assert rejection is not None and rejection.what == "requests per day (RPD)"


def test_concurrency_counts_the_request_itself():
    limits = LimitSet(SimLimits(concurrency=2))
    assert limits.check(1, T0, in_flight=2) is None
    rejection = limits.check(1, T0, in_flight=3)
    assert rejection is not None
    assert rejection.what == "concurrent requests"


def test_snapshot_reports_the_minute_budget_before_the_daily_one():
    limits = LimitSet(SimLimits(rpm=10, rpd=100, tpd=1000))
    limits.take(50, T0)
    snap = limits.snapshot(T0 + 10)
    assert (snap.limit_requests, snap.remaining_requests) == (10, 9)
    assert snap.reset_requests_s == pytest.approx(50)
    assert (snap.limit_tokens, snap.remaining_tokens) == (1000, 950)


def test_snapshot_over_prefers_its_own_budgets():
    model = RateSnapshot(limit_requests=5, remaining_requests=4, reset_requests_s=1.0)
    provider = RateSnapshot(10, 9, 2.0, 100, 90, 3.0)
    merged = model.over(provider)
    assert merged == RateSnapshot(5, 4, 1.0, 100, 90, 3.0)


def test_clear_empties_every_window():
    limits = LimitSet(SimLimits(rpm=1, rpd=1))
    limits.take(1, T0)
    limits.clear()
    assert limits.check(1, T0) is None


def test_a_hidden_limit_refuses_at_its_share_while_stating_the_published_figure():
    limits = LimitSet(SimLimits(rpm=600, tpm=60_000, rpd=100), window_s=1.0, hidden_factor=0.6)
    for _ in range(6):
        assert limits.check(10, T0) is None
        limits.take(10, T0)
    rejection = limits.check(10, T0)
    assert rejection is not None and rejection.what == "requests per 1s window (RPM)"
    assert "Limit 10, Used 6, Requested 1" in rejection.message("model `m`")
    snap = limits.snapshot(T0)
    assert (snap.limit_requests, snap.remaining_requests) == (10, 4)
    assert (snap.limit_tokens, snap.remaining_tokens) == (1000, 940)


def test_a_hidden_daily_cap_refuses_at_its_share():
    limits = LimitSet(SimLimits(rpd=10), hidden_factor=0.6)
    for _ in range(6):
        limits.take(1, T0)
    rejection = limits.check(1, T0)
    assert rejection is not None and rejection.limit == 10


def test_usage_is_debited_from_the_token_budgets_only():
    limits = LimitSet(SimLimits(rpm=10, tpm=100))
    limits.take(5, T0)
    limits.take_tokens(90, T0)
    snap = limits.snapshot(T0)
    assert (snap.remaining_requests, snap.remaining_tokens) == (9, 5)
    assert limits.check(6, T0) is not None
