"""How many lines a second each target may take, given every one of its limits.

The feeder plans against the tightest of them (docs/limits.md, "Pacing a batch"):

``rpm``
    the request rate (:func:`relay_core.batch.run.planner.target_rates`);
``tpm``
    each token bucket's rate divided by the tokens one line is charged there, as learned from
    real usage (:mod:`relay_core.limits.costs`; until a target has answered, its TPM does not
    limit the plan and its buckets alone pace it);
``concurrency``
    the cap divided by the batch's mean answer time (Little's law);
``rpd`` / ``tpd``
    what is left of the daily cap, **spent evenly** over the time the batch has left with
    it, not burnt at the start (by the window's end less a second and the answers' tail, so
    that the last lines are answered in time): see :func:`daily_rate`.

A limit set at the provider's level is shared by the provider's targets in the batch.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from relay_core.batch.run.planner import TAIL_COVER
from relay_core.limits.costs import TokenCost
from relay_core.limits.specs import Capacity, CounterSpec, LimitPlan, Reason
from relay_core.routing.targets import Target

FINISH_MARGIN_S = 1.0


@dataclass(frozen=True, slots=True)
class TargetView:
    """What the plan knows of one target now: its limits, their levels, its learned cost."""

    plan: LimitPlan
    capacity: Capacity  # levels in the plan's order: buckets, counters, concurrency
    cost: TokenCost


@dataclass(frozen=True, slots=True)
class Allowance:
    rate: float  # lines/s
    binding: Reason  # the limit that sets it


@dataclass(frozen=True, slots=True)
class BatchLeft:
    """The batch as the plan sees it: lines not yet done, and when its window ends."""

    lines: int
    deadline: float  # epoch s
    upstream_s: float = 0.0  # its mean answer time so far (0: none yet)

    @property
    def finish_by(self) -> float:
        """When its last lines should be sent to be answered within the window: its end less
        a second and the answers' tail."""
        return self.deadline - FINISH_MARGIN_S - TAIL_COVER * self.upstream_s


def daily_rate(left: float, horizon_s: float, lines: int, others_rps: float) -> float | None:
    """The lines/s a daily cap with ``left`` lines allows, or None when it does not bind.

    ``horizon_s`` is the time until the cap resets or the batch's window ends, whichever comes
    first. When the batch's ``lines`` fit in what is left, the cap does not bind. Otherwise the
    cap is spread so that it lasts until the batch ends (the other targets, at
    ``others_rps``, do the rest) or until the horizon, whichever comes first:
    ``max(left / horizon, left * others / (lines - left))``.
    """
    if lines <= left:
        return None
    if left <= 0:
        return 0.0
    if horizon_s <= 0:
        return None
    return max(left / horizon_s, left * others_rps / (lines - left))


def _shares(views: Mapping[str, TargetView]) -> Counter[str]:
    """How many of the batch's targets take from each limit (by its key)."""
    shares: Counter[str] = Counter()
    for view in views.values():
        plan = view.plan
        keys = [b.key for b in plan.buckets] + [c.key for c in plan.counters]
        shares.update(keys + [c.key for c in plan.concurrency])
    return shares


def _steady(view: TargetView, rpm_rps: float, shares: Counter[str], upstream_s: float) -> Allowance:
    """The rate the target's per-minute limits and concurrency allow."""
    best = Allowance(rpm_rps, Reason.rpm)
    line = view.cost.line_tokens
    for bucket in view.plan.buckets:
        if bucket.reason is Reason.tpm and line:
            rate = bucket.rate / line / shares[bucket.key]
            if rate < best.rate:
                best = Allowance(rate, Reason.tpm)
    for cap in view.plan.concurrency:
        if upstream_s > 0:
            rate = cap.limit / upstream_s / shares[cap.key]
            if rate < best.rate:
                best = Allowance(rate, Reason.concurrency)
    return best


def _daily(
    view: TargetView,
    best: Allowance,
    shares: Counter[str],
    batch: BatchLeft,
    *,
    others: float,
    now: float,
) -> Allowance:
    levels = view.capacity.levels[len(view.plan.buckets) :]
    for counter, level in zip(view.plan.counters, levels, strict=False):
        left = _lines_left(counter, level.available, view.cost) / shares[counter.key]
        if math.isnan(left):
            continue
        horizon = min(counter.reset_at, batch.finish_by) - now
        rate = daily_rate(left, horizon, batch.lines, others)
        if rate is not None and rate < best.rate:
            best = Allowance(rate, counter.reason)
    return best


def _lines_left(counter: CounterSpec, available: float, cost: TokenCost) -> float:
    if not counter.reason.counts_tokens:
        return max(0.0, available)
    if not cost.line_tokens:
        return math.nan  # no cost learned yet: the counter itself refuses what it must
    return max(0.0, available) / cost.line_tokens


def allowances(
    targets: Sequence[Target],
    rpm_rates: Mapping[str, float],
    views: Mapping[str, TargetView],
    batch: BatchLeft,
    now: float,
) -> dict[str, Allowance]:
    """Each target's lines/s and the limit that sets it (targets without a view: their
    ``rpm_rates``)."""
    shares = _shares(views)
    steady = {
        t.key: _steady(views[t.key], rpm_rates[t.key], shares, batch.upstream_s)
        if t.key in views
        else Allowance(rpm_rates[t.key], Reason.rpm)
        for t in targets
    }
    pooled = sum(a.rate for a in steady.values() if math.isfinite(a.rate))
    out: dict[str, Allowance] = {}
    for t in targets:
        best = steady[t.key]
        if t.key in views:
            others = pooled - (best.rate if math.isfinite(best.rate) else 0.0)
            best = _daily(views[t.key], best, shares, batch, others=others, now=now)
        out[t.key] = best
    return out
