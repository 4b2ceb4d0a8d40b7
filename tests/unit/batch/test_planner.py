"""Pooled capacity, the spread of lines over providers, and the feeder's pace."""

from __future__ import annotations

from collections import Counter

import pytest

from relay_core.batch.client.estimate import RouteCount, estimate
from relay_core.batch.run.planner import (
    UNLIMITED_RPS,
    Assigner,
    Pace,
    candidates,
    healthy,
    target_rates,
)
from relay_core.catalogue.models import Limits, ModelConfig, ProviderConfig
from relay_core.limits.plan import PACING_MARGIN
from relay_core.routing.ranking import LiveState
from relay_core.routing.targets import Selection, Target, all_targets

PACED = 1 - PACING_MARGIN


def provider(name: str, rpm: int | None, *models: ModelConfig) -> ProviderConfig:
    return ProviderConfig(
        name=name,
        api="openai",
        base_url=f"http://{name}.test/v1",
        limits=Limits(rpm=rpm),
        models=list(models) or [ModelConfig(id=f"{name}-m")],
    )


def test_rates_follow_provider_and_model_limits() -> None:
    targets = all_targets(
        [
            provider("a", 600),
            provider("b", 1200, ModelConfig(id="x", limits=Limits(rpm=60)), ModelConfig(id="y")),
            provider("c", None, ModelConfig(id="z", limits=Limits(rpm=120))),
            provider("d", None),
        ]
    )
    rates = target_rates(targets)
    assert rates["a/a-m"] == pytest.approx(10 * PACED)
    assert rates["b/x"] == pytest.approx(1 * PACED)  # its own cap
    assert rates["b/y"] == pytest.approx(10 * PACED)  # half of the provider's 20/s
    assert rates["c/z"] == pytest.approx(2 * PACED)
    assert rates["d/d-m"] == UNLIMITED_RPS


def test_models_with_their_own_caps_share_the_provider_in_proportion() -> None:
    targets = all_targets(
        [
            provider(
                "p",
                300,
                ModelConfig(id="x", limits=Limits(rpm=600)),
                ModelConfig(id="y", limits=Limits(rpm=1200)),
            ),
        ]
    )
    rates = target_rates(targets)
    assert rates["p/x"] + rates["p/y"] == pytest.approx(5 * PACED)  # the provider's cap
    assert rates["p/y"] == pytest.approx(2 * rates["p/x"])


def test_the_assigner_spreads_lines_in_proportion_and_interleaved() -> None:
    weights = {"a": 1.0, "b": 2.0, "c": 5.0}
    assigner = Assigner()
    picks = [assigner.pick(weights) for _ in range(800)]
    assert Counter(picks) == {"a": 100, "b": 200, "c": 500}
    # Smooth: "c" never takes more than two lines in a row.
    assert "ccc" not in "".join(picks)


def test_unhealthy_targets_take_no_lines() -> None:
    targets = all_targets([provider("a", 60), provider("b", 60), provider("c", 60)])
    live = {"a/a-m": LiveState(breaker_open=True), "b/b-m": LiveState(wait_s=30)}
    assert [t.key for t in healthy(targets, live, None)] == ["c/c-m"]
    assert [t.key for t in healthy(targets, {}, {"a", "b"})] == ["a/a-m", "b/b-m"]


def test_candidates_put_the_pick_first_then_the_able_by_rate() -> None:
    targets = all_targets([provider("a", 60), provider("b", 600), provider("c", 6000)])
    rates = target_rates(targets)
    able = [t for t in targets if t.provider.name != "c"]
    order = candidates("a/a-m", able, targets, rates)
    assert [c.provider for c in order] == ["a", "b", "c"]


def test_pace_scales_with_the_share_and_keeps_a_floor() -> None:
    pace = Pace.of(100.0, share=0.5, window_s=2.0, tick_s=0.1)
    assert (pace.rate, pace.burst, pace.window) == (50.0, 10.0, 100)
    idle = Pace.of(0.0, share=1.0, window_s=2.0, tick_s=0.1)
    assert idle.rate > 0 and idle.window == 4 and idle.burst == 1.0
    # A pool that may take few lines (a daily cap spread over the day) gets no more.
    sparse = Pace.of(0.01, share=1.0, window_s=2.0, tick_s=0.1)
    assert sparse.rate == 0.01 and sparse.burst == 1.0


def test_the_estimate_divides_the_work_by_the_healthy_pooled_rate() -> None:
    providers = [provider("a", 600), provider("b", 600), provider("c", 600)]
    providers[2] = providers[2].model_copy(update={"limits": Limits(rpm=600, rpd=100)})

    def resolve(route: Selection) -> list[Target]:
        return all_targets(providers)

    live = {"b/b-m": LiveState(breaker_open=True)}
    counts = [RouteCount(model="meta-model", count=588)]
    est = estimate(counts, resolve, live, None, backlog=294)
    assert est.rate_per_s == pytest.approx(2 * 10 * PACED)  # a and c; b is open
    assert est.estimated_seconds == pytest.approx(30.0)
    assert est.estimated_seconds_with_backlog == pytest.approx(45.0)
    assert [(t.provider, t.healthy, t.rpd) for t in est.targets] == [
        ("a", True, None),
        ("b", False, None),
        ("c", True, 100),
    ]
    assert est.warnings == []  # a has no daily cap


def test_the_window_covers_the_providers_answer_time_and_its_tail() -> None:
    fast = Pace.of(40.0, share=1.0, window_s=0.5, tick_s=0.1)
    slow = Pace.of(40.0, share=1.0, window_s=0.5, tick_s=0.1, upstream_s=2.0)
    # 40 lines/s x (2.5 x a 2 s mean answer + 0.5 s): stragglers do not starve the rest.
    assert (fast.window, slow.window) == (20, 220)
