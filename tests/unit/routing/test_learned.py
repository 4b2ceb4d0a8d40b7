"""Learned routing: each score term, the posterior, the exploring share, and the tier modes
over many decisions (docs/routing.md)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from relay_core.catalogue.models import ModelConfig, Tier
from relay_core.profile import Needs, Profile
from relay_core.routing.outcomes.stats import PRIOR_MEAN, WINDOW, Stats, latency_bucket
from relay_core.routing.ranking import LiveState, Ranker
from relay_core.routing.score import (
    LATENCY_REF_S,
    SUCCESS_POWER,
    Terms,
    latency_term,
    load_term,
    success_term,
)
from relay_core.routing.targets import Target, all_targets
from relay_core.settings import Mode, Strategy
from tests.unit.routing.support import catalogue, keys, provider

DECISIONS = 10_000


def target(name: str, tier: Tier = Tier.free, types: list[str] | None = None) -> Target:
    m = ModelConfig(id="m", type=types or ["text"])
    config = provider(name, "openai", [m], tier=tier)
    return Target(config, config.models[0])


def answered(ok: int, bad: int = 0, seconds: float = 0.2) -> Stats:
    buckets = [0.0] * 12
    buckets[latency_bucket(seconds)] = float(ok)
    return Stats(float(ok), float(bad), tuple(buckets), at=0.0)


# ---- the terms ----------------------------------------------------------------------------


def test_load_is_headroom_times_weight_and_stays_positive_and_ordered_below_zero() -> None:
    assert load_term(0.5, 2.0) == 1.0
    below = [load_term(h, 1.0) for h in (0.01, 0.0, -0.5, -3.0)]
    assert all(x > 0 for x in below)
    assert below == sorted(below, reverse=True)


def test_success_is_the_posterior_mean_or_a_draw_when_exploring() -> None:
    rng = random.Random(1)
    assert success_term(Stats(), False, rng) == pytest.approx(PRIOR_MEAN)
    assert success_term(answered(9, 1), False, rng) == pytest.approx((1.8 + 9) / 12)
    draws = [success_term(answered(9, 1), True, rng) for _ in range(2000)]
    assert len(set(draws)) > 1900  # draws, not a constant
    assert sum(draws) / len(draws) == pytest.approx((1.8 + 9) / 12, abs=0.02)


def test_latency_is_neutral_until_known_then_faster_scores_higher() -> None:
    assert latency_term(Stats()) == 0.5  # as if it answered in LATENCY_REF_S
    fast, slow = latency_term(answered(5, seconds=0.1)), latency_term(answered(5, seconds=8))
    assert fast > 0.5 > slow
    # An answer time is known to its bucket's upper edge (1.6 s here).
    assert latency_term(answered(5, seconds=1.5)) == pytest.approx(1 / (1 + 1.6 / LATENCY_REF_S))


def test_the_score_is_the_product_of_its_terms() -> None:
    t = Terms(load=2.0, success=0.5, latency=0.25)
    assert t.score == pytest.approx(2.0 * 0.5**SUCCESS_POWER * 0.25)
    assert "load 2.00" in t.describe() and "(mean)" in t.describe()


def test_with_nothing_learned_the_order_is_least_loaded() -> None:
    a, b = target("a"), target("b")
    live = {"a/m": LiveState(headroom=0.3), "b/m": LiveState(headroom=0.6)}
    assert keys(Ranker(Strategy.least_loaded, Mode.free).route([a, b], live).targets) == [
        "b/m",
        "a/m",
    ]


def test_a_target_that_fails_a_family_loses_it_despite_more_headroom() -> None:
    a, b = target("a"), target("b")
    live = {"a/m": LiveState(headroom=1.0), "b/m": LiveState(headroom=0.5)}
    learned = {"a/m": answered(6, 4), "b/m": answered(10)}
    ranked = Ranker(Strategy.least_loaded, Mode.free).route([a, b], live, learned)
    assert keys(ranked.targets) == ["b/m", "a/m"]
    assert ranked.terms["a/m"].score < ranked.terms["b/m"].score


# ---- the posterior ------------------------------------------------------------------------


def test_counts_fade_by_half_every_half_life() -> None:
    s = Stats(40.0, 10.0, (8.0,) + (0.0,) * 11, at=100.0)
    half = s.faded(100.0 + 600.0)
    assert (half.successes, half.failures, half.latency[0]) == (20.0, 5.0, 4.0)
    assert s.faded(50.0) is s  # written after "now": as it is


def test_percentiles_come_from_the_buckets() -> None:
    s = Stats(10.0, 0.0, (0.0, 5.0, 4.0, 1.0) + (0.0,) * 8)
    assert s.percentile(0.5) == 0.1 and s.percentile(0.95) == 0.4
    assert Stats().percentile(0.5) is None


def test_the_window_bounds_how_long_a_past_weighs() -> None:
    # A provider right WINDOW times, then wrong: its mean falls under 0.5 within WINDOW more.
    s, f = WINDOW, 0.0
    for _ in range(int(WINDOW)):
        f += 1
        if s + f > WINDOW:
            k = WINDOW / (s + f)
            s, f = s * k, f * k
    assert Stats(s, f).mean() < 0.5


# ---- exploring, and the modes over many decisions ------------------------------------------


def test_the_exploring_share_is_bounded_by_the_setting() -> None:
    a, b = target("a"), target("b")
    learned = {"a/m": answered(20), "b/m": answered(2, 1)}
    r = Ranker(Strategy.least_loaded, Mode.free, random.Random(3), explore=0.05)
    routes = [r.route([a, b], {}, learned) for _ in range(DECISIONS)]
    explored = sum(x.explored for x in routes) / DECISIONS
    assert 0.04 <= explored <= 0.06
    firsts = Counter(x.targets[0].key for x in routes if not x.explored)
    assert firsts == {"a/m": DECISIONS - sum(x.explored for x in routes)}  # exploit: always a
    quiet = Ranker(Strategy.least_loaded, Mode.free, random.Random(3))
    assert not any(quiet.route([a, b], {}, learned).explored for _ in range(1000))


def random_live(rng: random.Random, targets: list[Target]) -> dict[str, LiveState]:
    return {
        t.key: LiveState(
            wait_s=rng.choice([0.0, 0.0, 2.0]),
            headroom=rng.uniform(-0.5, 1.0),
            breaker_open=rng.random() < 0.1,
        )
        for t in targets
    }


def random_learned(rng: random.Random, targets: list[Target]) -> dict[str, Stats]:
    return {t.key: answered(rng.randint(0, 30), rng.randint(0, 30)) for t in targets}


@pytest.mark.parametrize("strategy", list(Strategy))
def test_free_never_ranks_a_paid_target_over_ten_thousand_decisions(strategy: Strategy) -> None:
    rng = random.Random(16)
    everything = all_targets(catalogue())
    assert any(t.provider.tier is Tier.paid for t in everything)
    r = Ranker(strategy, Mode.free, random.Random(5), explore=0.2, escalate_below=1.0)
    vision = Profile(needs=Needs(vision=True))
    for _ in range(DECISIONS):
        targets = rng.sample(everything, rng.randint(1, len(everything)))
        ranked = r.route(targets, random_live(rng, targets), random_learned(rng, targets), vision)
        assert all(t.provider.tier is Tier.free for t in ranked.targets)
        assert not ranked.escalated


def test_auto_keeps_paid_last_while_free_targets_do_well() -> None:
    free, paid = target("f"), target("p", Tier.paid)
    r = Ranker(Strategy.least_loaded, Mode.auto)
    ranked = r.route([paid, free], {}, {"f/m": answered(20), "p/m": answered(20)})
    assert keys(ranked.targets) == ["f/m", "p/m"] and not ranked.escalated


def test_auto_escalates_when_free_targets_are_likely_to_fail_this_family() -> None:
    free, paid = target("f"), target("p", Tier.paid)
    r = Ranker(Strategy.least_loaded, Mode.auto, escalate_below=0.7)
    ranked = r.route([free, paid], {}, {"f/m": answered(4, 6), "p/m": answered(20)})
    assert ranked.escalated and keys(ranked.targets) == ["p/m", "f/m"]


def test_auto_escalates_when_no_free_target_has_what_the_request_needs() -> None:
    free, paid = target("f"), target("p", Tier.paid, ["text", "vision"])
    r = Ranker(Strategy.least_loaded, Mode.auto)
    assert r.route([free, paid], {}, {}, Profile(needs=Needs(vision=True))).escalated
    assert not r.route([free, paid], {}, {}, Profile()).escalated
