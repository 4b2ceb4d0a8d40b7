"""The binding ceiling, computed from limits and a run's demand by hand (no server)."""

from __future__ import annotations

import pytest

from relay_sim.ceiling import Demand, Span, ceiling
from relay_sim.config import SimLimits
from relay_sim.limits import LimitSet
from relay_sim.pooled import pooled_ceiling

T0 = 1_000_000.0  # 1970-01-12 13:46:40 UTC; that day ends at 1_036_800


def _demand(limits: LimitSet, requests: int, cost: int, answer_s: float = 0.0) -> Demand:
    demand = Demand()
    for _ in range(requests):
        demand.seen(limits, cost, T0)
        demand.answered(cost, answer_s)
    return demand


def test_rpm_bound_counts_one_budget_per_window_begun():
    limits = LimitSet(SimLimits(rpm=120, tpm=1_000_000), window_s=1.0)  # 2 per second
    c = ceiling(limits, _demand(limits, 10, 10), Span(T0, T0 + 9.5), usage=False)
    assert (c.binding, c.scope) == ("rpm", None)
    assert c.lines_allowed == 2 * 10
    assert c.requests_per_s == pytest.approx(20 / 9.5)
    assert c.span_s == 9.5 and c.mean_tokens == 10 and c.requests == 10


def test_tpm_bound_divides_the_token_budget_by_the_mean_cost():
    limits = LimitSet(SimLimits(rpm=600, tpm=1200), window_s=1.0)  # 10 requests, 20 tokens /s
    c = ceiling(limits, _demand(limits, 4, 10), Span(T0, T0 + 4), usage=False)
    assert c.binding == "tpm"
    assert c.lines_allowed == pytest.approx(20 * 5 / 10)


def test_a_token_window_holds_whole_requests():
    # 600 tokens a second, requests of 340: one fits in a window, not 1.76.
    limits = LimitSet(SimLimits(rpm=6000, tpm=36_000), window_s=1.0)
    c = ceiling(limits, _demand(limits, 4, 340), Span(T0, T0 + 9.5), usage=False)
    assert c.binding == "tpm"
    assert c.lines_allowed == pytest.approx(1 * 10)
    # Counted per minute the rounding hardly matters: 105 of 105.9 a window.
    per_minute = LimitSet(SimLimits(rpm=6000, tpm=36_000), window_s=60.0)
    c = ceiling(per_minute, _demand(per_minute, 4, 340), Span(T0, T0 + 90), usage=False)
    assert c.lines_allowed == pytest.approx(105 * 2)


def test_usage_counting_costs_a_request_its_answer_not_its_reservation():
    limits = LimitSet(SimLimits(rpm=600, tpm=1200), window_s=1.0)
    demand = Demand()
    for _ in range(4):
        demand.seen(limits, 2, T0)  # the prompt, charged at admission
        demand.answered(5, 0.0)  # prompt + completion
    assert ceiling(limits, demand, Span(T0, T0 + 4), usage=True).mean_tokens == 5
    assert ceiling(limits, demand, Span(T0, T0 + 4), usage=False).mean_tokens == 2


def test_a_daily_cap_allows_what_was_left_of_it_at_the_first_request():
    limits = LimitSet(SimLimits(rpm=600, rpd=50), window_s=1.0)
    for _ in range(20):  # spent before this run
        limits.take(1, T0 - 10)
    c = ceiling(limits, _demand(limits, 40, 1), Span(T0, T0 + 60), usage=False)
    assert (c.binding, c.lines_allowed) == ("rpd", 30)


def test_a_daily_reset_inside_the_span_gives_a_whole_cap_more():
    limits = LimitSet(SimLimits(rpd=50, tpd=10_000))
    c = ceiling(limits, _demand(limits, 40, 100), Span(T0, 1_036_800 + 5), usage=False)
    assert (c.binding, c.lines_allowed) == ("rpd", 100)
    assert ceiling(limits, _demand(limits, 40, 400), Span(T0, T0 + 5), usage=False).binding == (
        "tpd"
    )


def test_concurrency_bound_is_concurrency_over_the_mean_answer_time():
    limits = LimitSet(SimLimits(rpm=60_000, concurrency=4), window_s=1.0)
    c = ceiling(limits, _demand(limits, 10, 10, answer_s=2.0), Span(T0, T0 + 100), usage=False)
    assert c.binding == "concurrency"
    assert c.lines_allowed == pytest.approx(4 * 100 / 2.0)
    assert c.requests_per_s == pytest.approx(2.0) and c.mean_answer_s == 2.0


def test_hidden_limits_are_what_the_ceiling_counts():
    limits = LimitSet(SimLimits(rpm=600), window_s=1.0, hidden_factor=0.6)
    c = ceiling(limits, _demand(limits, 10, 1), Span(T0, T0 + 9), usage=False)
    assert c.lines_allowed == pytest.approx(6 * 10)


def test_a_request_window_holds_whole_requests():
    # Published 4 a second, 60 % enforced: a window of 2.4 admits 2 requests, not 2.4.
    limits = LimitSet(SimLimits(rpm=240), window_s=1.0, hidden_factor=0.6)
    c = ceiling(limits, _demand(limits, 10, 1), Span(T0, T0 + 9), usage=False)
    assert c.lines_allowed == pytest.approx(2 * 10)


def test_a_model_limit_binds_the_provider_through_its_share_of_the_requests():
    provider = LimitSet(SimLimits(rpm=600), window_s=1.0)  # 10 /s
    model = LimitSet(SimLimits(rpm=60), window_s=1.0)  # 1 /s
    whole, part = _demand(provider, 10, 1), _demand(model, 5, 1)
    c = ceiling(provider, whole, Span(T0, T0 + 9), False, [("slow", model, part)])
    assert (c.binding, c.scope) == ("rpm", "slow")
    assert c.lines_allowed == pytest.approx(1 * 10 / 0.5)


def test_nothing_limits_an_unlimited_provider_and_nothing_seen_states_nothing():
    limits = LimitSet(SimLimits())
    c = ceiling(limits, _demand(limits, 3, 1), Span(T0, T0 + 1), usage=False)
    assert (c.binding, c.lines_allowed, c.requests_per_s) == (None, None, None)
    empty = ceiling(LimitSet(SimLimits(rpm=10)), Demand(), Span(T0, T0), usage=False)
    assert (empty.binding, empty.requests, empty.span_s) == (None, 0, 0.0)


def _stats(**providers: tuple[int, float | None, float | None]) -> dict[str, object]:
    return {
        "providers": {
            name: {
                "succeeded": done,
                "ceiling": {
                    "requests": done,
                    "requests_per_s": rate,
                    "binding": None if lines is None else "rpm",
                    "span_s": 10.0,
                    "lines_allowed": lines,
                },
            }
            for name, (done, rate, lines) in providers.items()
        },
        "totals": {},
    }


def test_the_pooled_ceiling_sums_the_providers_that_saw_requests():
    pool = pooled_ceiling(_stats(a=(90, 10.0, 100.0), b=(45, 5.0, 50.0), idle=(0, None, None)))
    assert (pool.requests_per_s, pool.lines_allowed, pool.succeeded) == (15.0, 150.0, 135)
    assert sorted(pool.providers) == ["a", "b"] and pool.unbounded == []
    assert pool.share() == pytest.approx(0.9)
    assert pool.share(75) == pytest.approx(0.5)
    assert pooled_ceiling(_stats(a=(90, 10.0, 100.0), b=(1, 1.0, 1.0)), names=["a"]).share() == 0.9


def test_an_unbounded_provider_makes_the_pooled_share_unstated():
    pool = pooled_ceiling(_stats(a=(90, 10.0, 100.0), free=(3, None, None)))
    assert pool.unbounded == ["free"] and pool.share() is None
