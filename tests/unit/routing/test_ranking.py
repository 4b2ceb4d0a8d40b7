"""``Ranker``: the order candidates are tried in, for each strategy and tier mode."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from relay_core.catalogue.models import ModelConfig, Tier
from relay_core.routing.ranking import LiveState, Ranker
from relay_core.routing.targets import Target
from relay_core.settings import Mode, Strategy
from tests.unit.routing.support import keys, provider

DRAWS = 4000


def target(name: str, weight: float = 1.0, tier: Tier = Tier.free) -> Target:
    config = provider(name, "openai", [ModelConfig(id="m")], weight=weight, tier=tier)
    return Target(config, config.models[0])


def ranker(strategy: Strategy, mode: Mode = Mode.free, seed: int = 7) -> Ranker:
    return Ranker(strategy, mode, random.Random(seed))


def firsts(r: Ranker, targets: list[Target], live: dict[str, LiveState]) -> Counter[str]:
    return Counter(r.rank(targets, live)[0].provider.name for _ in range(DRAWS))


A, B, C, D = target("a"), target("b"), target("c"), target("d")


# ---- each strategy among able targets -------------------------------------------------------


def test_least_loaded_puts_the_most_headroom_first_scaled_by_weight() -> None:
    heavy = target("heavy", weight=3.0)
    live = {
        "a/m": LiveState(headroom=0.5),
        "b/m": LiveState(headroom=0.9),
        "heavy/m": LiveState(headroom=0.4),  # 0.4 x 3 = 1.2
        "c/m": LiveState(headroom=0.9, latency_s=2.0),
    }
    got = ranker(Strategy.least_loaded).rank([A, B, heavy, C], live)
    assert keys(got) == ["heavy/m", "b/m", "c/m", "a/m"]  # equal headroom: faster first


def test_least_loaded_treats_unknown_targets_as_idle() -> None:
    got = ranker(Strategy.least_loaded).rank([A, B], {"a/m": LiveState(headroom=0.2)})
    assert keys(got) == ["b/m", "a/m"]


def test_roundrobin_rotates_through_every_target() -> None:
    r = ranker(Strategy.roundrobin)
    rankings = [keys(r.rank([A, B, C], {})) for _ in range(6)]
    assert {tuple(k) for k in rankings} == {
        ("a/m", "b/m", "c/m"),
        ("b/m", "c/m", "a/m"),
        ("c/m", "a/m", "b/m"),
    }
    assert rankings[:3] == rankings[3:]


def test_random_is_a_permutation_with_every_target_first_about_equally() -> None:
    r = ranker(Strategy.random)
    assert sorted(keys(r.rank([A, B, C, D], {}))) == ["a/m", "b/m", "c/m", "d/m"]
    counts = firsts(r, [A, B, C, D], {})
    assert all(abs(n / DRAWS - 0.25) < 0.03 for n in counts.values()), counts


def test_random_with_the_same_seed_repeats() -> None:
    one, two = ranker(Strategy.random, seed=3), ranker(Strategy.random, seed=3)
    assert [keys(one.rank([A, B, C, D], {})) for _ in range(5)] == [
        keys(two.rank([A, B, C, D], {})) for _ in range(5)
    ]


def test_weighted_puts_each_target_first_in_proportion_to_its_weight() -> None:
    heavy, light = target("heavy", weight=3.0), target("light", weight=1.0)
    counts = firsts(ranker(Strategy.weighted), [light, heavy], {})
    assert counts["heavy"] / DRAWS == pytest.approx(0.75, abs=0.03)


def test_weighted_scales_weights_by_headroom() -> None:
    live = {"a/m": LiveState(headroom=0.9), "b/m": LiveState(headroom=0.3)}
    counts = firsts(ranker(Strategy.weighted), [B, A], live)
    assert counts["a"] / DRAWS == pytest.approx(0.75, abs=0.03)


def test_weighted_still_gives_an_empty_bucket_a_sliver() -> None:
    live = {"a/m": LiveState(headroom=0.0)}
    counts = firsts(ranker(Strategy.weighted), [A, B], live)
    assert 0 < counts["a"] < DRAWS * 0.03


# ---- targets that cannot serve now go last --------------------------------------------------


@pytest.mark.parametrize("strategy", list(Strategy))
def test_targets_that_cannot_serve_now_go_last_soonest_first(strategy: Strategy) -> None:
    live = {
        "a/m": LiveState(wait_s=30.0),
        "b/m": LiveState(breaker_open=True),
        "c/m": LiveState(wait_s=2.0),
    }
    r = ranker(strategy)
    for _ in range(20):
        assert keys(r.rank([A, B, C, D], live)) == ["d/m", "b/m", "c/m", "a/m"]


@pytest.mark.parametrize("strategy", list(Strategy))
def test_in_auto_mode_paid_targets_come_after_every_free_one(strategy: Strategy) -> None:
    paid = target("paid", weight=100.0, tier=Tier.paid)
    live = {"a/m": LiveState(wait_s=5.0), "b/m": LiveState(breaker_open=True)}
    r = ranker(strategy, Mode.auto)
    for _ in range(20):
        assert keys(r.rank([paid, A, B], live))[-1] == "paid/m"


def test_in_paid_mode_paid_targets_are_ranked_like_the_rest() -> None:
    paid = target("paid", weight=100.0, tier=Tier.paid)
    assert keys(ranker(Strategy.least_loaded, Mode.paid).rank([A, paid], {}))[0] == "paid/m"


def test_one_target_or_none() -> None:
    r = ranker(Strategy.weighted)
    assert r.rank([], {}) == []
    assert r.rank([A], {"a/m": LiveState(breaker_open=True)}) == [A]
