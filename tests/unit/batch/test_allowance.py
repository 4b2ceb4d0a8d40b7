"""The feeder's plan against every limit (issue 13, item 2): lines/s per target = the least of
RPM, TPM / the learned tokens per line, concurrency / the answer time, and the daily caps
spread over what is left of the batch's time with them. Limits and levels come from a real
limiter (memory backend)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest

from relay_core.batch.run.allowance import (
    Allowance,
    BatchLeft,
    TargetView,
    allowances,
    daily_rate,
)
from relay_core.batch.run.feeder import Feeder
from relay_core.batch.run.planner import OVERFEED, Pace, target_rates
from relay_core.batch.store.store import BatchStore
from relay_core.catalogue.models import ProviderConfig
from relay_core.limits import Limiter, MemoryBackend, Reason
from relay_core.limits.costs import TokenCost
from relay_core.limits.plan import PACING_MARGIN
from relay_core.routing.targets import Target, all_targets
from relay_core.storage.base import ObjectStorage

NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC).timestamp()  # 12 h before the UTC reset
PACED = 1 - PACING_MARGIN
LEARNED = TokenCost(line_tokens=300.0, samples=10)


def provider(name: str, models: list[str] | None = None, **limits: Any) -> ProviderConfig:
    return ProviderConfig.model_validate(
        {
            "name": name,
            "api": "openai",
            "base_url": f"http://{name}.test/v1",
            "limits": limits,
            "models": [{"id": m} for m in models or [f"{name}-m"]],
        }
    )


async def plan_of(
    targets: list[Target],
    left: BatchLeft,
    cost: TokenCost = LEARNED,
    limiter: Limiter | None = None,
) -> dict[str, Allowance]:
    limiter = limiter or Limiter(MemoryBackend(), "t")
    plans = [limiter.plan(t.provider, t.model, NOW) for t in targets]
    caps = await limiter.peek_many(plans, NOW)
    views = {
        t.key: TargetView(plan, cap, cost)
        for t, plan, cap in zip(targets, plans, caps, strict=True)
    }
    return allowances(targets, target_rates(targets), views, left, NOW)


def _is(got: Allowance, rate: float, binding: Reason) -> bool:
    return got.binding is binding and got.rate == pytest.approx(rate)


LONG = BatchLeft(lines=10_000, deadline=NOW + 86_400)


async def test_a_tpm_bound_target_takes_its_tpm_over_the_learned_tokens_per_line() -> None:
    targets = all_targets([provider("a", rpm=600, tpm=36_000)])
    (got,) = (await plan_of(targets, LONG)).values()
    assert _is(got, 36_000 / 60 * PACED / 300, Reason.tpm)
    # Nothing learned yet: the request rate, until the first answers say what a line costs.
    (first,) = (await plan_of(targets, LONG, TokenCost())).values()
    assert _is(first, 10 * PACED, Reason.rpm)
    # Lines learned to cost little (answers far under max_tokens, counted by usage): the
    # request rate binds again.
    (cheap,) = (await plan_of(targets, LONG, TokenCost(line_tokens=30.0, samples=9))).values()
    assert cheap.binding is Reason.rpm


async def test_a_provider_level_tpm_is_shared_by_its_targets_in_the_batch() -> None:
    targets = all_targets([provider("a", ["x", "y"], rpm=6000, tpm=36_000)])
    got = await plan_of(targets, LONG)
    for allowance in got.values():
        assert _is(allowance, 36_000 / 60 * PACED / 300 / 2, Reason.tpm)


async def test_concurrency_allows_the_cap_over_the_answer_time() -> None:
    targets = all_targets([provider("a", rpm=6000, concurrency=4)])
    left = BatchLeft(lines=10_000, deadline=NOW + 86_400, upstream_s=2.0)
    (got,) = (await plan_of(targets, left)).values()
    assert _is(got, 2.0, Reason.concurrency)


def test_a_daily_cap_that_binds_is_spread_until_the_batch_ends_or_the_horizon() -> None:
    # The batch's 50 lines fit in the 100 left: the cap does not bind.
    assert daily_rate(100, 3600, lines=50, others_rps=0.0) is None
    # Alone, a long batch spends the 100 evenly over the hour left.
    assert daily_rate(100, 3600, lines=1000, others_rps=0.0) == pytest.approx(100 / 3600)
    # With others doing 9 lines/s, the batch ends sooner: spend the cap by then.
    assert daily_rate(100, 3600, lines=1000, others_rps=9.0) == pytest.approx(100 * 9 / 900)
    # Spent: nothing more today. At the horizon: whatever is left, now.
    assert daily_rate(0, 3600, lines=1000, others_rps=9.0) == 0.0
    assert daily_rate(100, 0, lines=1000, others_rps=0.0) is None


async def test_a_long_batch_spends_a_daily_cap_over_the_day_left_not_at_the_start() -> None:
    targets = all_targets([provider("a", rpm=600, rpd=1000)])
    limiter = Limiter(MemoryBackend(), "t")
    plan = limiter.plan(targets[0].provider, targets[0].model, NOW)
    for i in range(400):  # 600 of the day's 1,000 left
        assert (await limiter.acquire(plan, 0, f"l{i}", NOW - 600 + i)).granted
    (got,) = (await plan_of(targets, LONG, limiter=limiter)).values()
    # 12 h to the UTC reset, 24 h left in the batch: 600 lines over 12 h.
    assert _is(got, 600 / 43_200, Reason.rpd)
    # A batch due in an hour spends them within the hour.
    soon = BatchLeft(lines=10_000, deadline=NOW + 3601)
    (due,) = (await plan_of(targets, soon, limiter=limiter)).values()
    assert _is(due, 600 / 3600, Reason.rpd)  # by a second before its end
    # A batch that fits in what is left runs at the request rate.
    (short,) = (await plan_of(targets, BatchLeft(500, NOW + 86_400), limiter=limiter)).values()
    assert short.binding is Reason.rpm


async def test_a_daily_token_cap_counts_lines_by_their_learned_cost() -> None:
    capped, free = provider("a", rpm=600, tpd=300_000), provider("b", rpm=600)
    targets = all_targets([capped, free])
    got = await plan_of(targets, LONG)
    # 1,000 lines of 300 tokens left today; b does 9.8 lines/s of the 10,000.
    expected = 1000 * 10 * PACED / (10_000 - 1000)
    assert _is(got["a/a-m"], expected, Reason.tpd)
    assert got["b/b-m"].binding is Reason.rpm


async def test_the_feeder_claims_faster_than_the_limiter_paces_a_spread_cap_at_its_rate() -> None:
    """Fed at exactly the rate the workers' limiter drains, the lines waiting at a provider are
    a queue with no drift, empty at many slots (each lost for good): the feeder claims the
    limiter-paced part OVERFEED times faster and the window bounds what waits. A daily cap
    spread over the batch's time is paced by the feeder alone: fed at its rate."""
    capped, free = provider("a", rpm=600, rpd=1000), provider("b", rpm=600)
    targets = all_targets([capped, free])
    limiter = Limiter(MemoryBackend(), "t")
    allowed = await plan_of(targets, LONG, limiter=limiter)
    assert allowed["a/a-m"].binding is Reason.rpd and allowed["b/b-m"].binding is Reason.rpm
    feeder = Feeder(cast(BatchStore, None), cast(ObjectStorage, None), 60.0, lambda _: targets)
    plan = feeder.plan([targets], {}, None, allowed)
    a, b = allowed["a/a-m"].rate, allowed["b/b-m"].rate
    assert plan.pooled == pytest.approx(a + b)
    assert plan.feedable == pytest.approx(a + OVERFEED * b)
    pace = Pace.of(plan.pooled, share=1.0, window_s=0.25, tick_s=0.1, feedable_rps=plan.feedable)
    assert pace.rate == pytest.approx(a + b)  # the window is sized by what the pool takes
    assert pace.feed == pytest.approx(a + OVERFEED * b)  # and fed faster than that
