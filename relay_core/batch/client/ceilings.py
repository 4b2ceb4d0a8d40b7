"""The binding ceiling of each provider for a batch: the tightest of its limits, in lines/s.

For each provider the estimate takes, over the targets a batch may use, the tightest of

- its request rate (``rpm``) and token rate (``tpm``) buckets, as the limiter paces them now
  (2 % under the published rate, times the share learned from its 429s): a token bucket
  allows ``rate / tokens per line`` lines/s;
- its ``concurrency`` over the answer time (Little's law), when an answer time is known;

at the provider's level and at each model's (a provider's ceiling is never above the sum of
its models'). A provider with no limit at all is paced at :data:`UNLIMITED_RPS`. The ceiling is
then shared among the provider's targets in proportion to the models' own ceilings (equally
when they have none), as :func:`relay_core.batch.run.planner.target_rates` shares the RPM.

Daily caps (``rpd``, ``tpd``) do not slow a provider down; they stop it until their reset:
:class:`Daily` is how many lines a provider may still take today, how many a whole day allows,
and when the day turns (:mod:`relay_core.batch.client.finish` turns them into a finish time).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from relay_core.batch.run.planner import UNLIMITED_RPS
from relay_core.limits.specs import Capacity, LimitPlan, Reason
from relay_core.routing.targets import Target


@dataclass(frozen=True, slots=True)
class Daily:
    left: float  # lines the caps still allow before they reset
    per_day: float  # lines a whole day allows
    resets_in_s: float


@dataclass(frozen=True, slots=True)
class Ceiling:
    rate: float  # lines/s
    binding: str  # the limit that gives it: rpm, tpm, concurrency, or none


@dataclass(frozen=True, slots=True)
class ProviderCeiling:
    provider: str
    rate: float  # lines/s, the targets' sum
    binding: str
    daily: Daily | None  # None: no daily cap
    targets: dict[str, Ceiling]  # by target key


def _tightest(found: Sequence[Ceiling]) -> Ceiling:
    return min(found, key=lambda c: c.rate, default=Ceiling(math.inf, "none"))


def _scope_ceiling(plan: LimitPlan, scope: str, tokens: float, answer_s: float | None) -> Ceiling:
    """The tightest of ``plan``'s limits at ``scope``, for lines of ``tokens`` tokens."""
    found = []
    for b in plan.buckets:
        if b.scope != scope:
            continue
        per_line = max(1.0, tokens) if b.reason is Reason.tpm else 1.0
        found.append(Ceiling(b.rate / per_line, b.reason.value))
    if answer_s:
        found += [
            Ceiling(c.limit / answer_s, "concurrency") for c in plan.concurrency if c.scope == scope
        ]
    return _tightest(found)


def _daily(
    plans: Sequence[LimitPlan], levels: Sequence[Capacity | None], tokens: float, now: float
) -> Daily | None:
    """The tightest daily cap over ``plans`` (a provider's and its models'), in lines."""
    best: Daily | None = None
    for plan, cap in zip(plans, levels, strict=True):
        offset = len(plan.buckets)
        for i, counter in enumerate(plan.counters):
            per_line = max(1.0, tokens) if counter.reason.counts_tokens else 1.0
            level = cap.levels[offset + i] if cap is not None else None
            left = (level.available if level is not None else counter.limit) / per_line
            day = Daily(max(0.0, left), counter.limit / per_line, max(0.0, counter.reset_at - now))
            if best is None or day.left < best.left:
                best = day
    return best


def provider_ceilings(
    targets: Sequence[Target],
    *,
    plans: Mapping[str, LimitPlan],
    levels: Mapping[str, Capacity],
    tokens: Mapping[str, float],
    answer_s: float | None,
    now: float,
) -> dict[str, ProviderCeiling]:
    """Each provider's binding ceiling over ``targets`` (by provider name); ``tokens`` is
    the tokens one line costs on each target, ``plans`` and ``levels`` the limiter's."""
    groups: dict[str, list[Target]] = defaultdict(list)
    for t in targets:
        groups[t.provider.name].append(t)
    out = {}
    for name, group in groups.items():
        own = {
            t.key: _scope_ceiling(plans[t.key], f"{name}/{t.model.id}", tokens[t.key], answer_s)
            for t in group
        }
        mean_tokens = sum(tokens[t.key] for t in group) / len(group)
        whole = _tightest(
            [
                _scope_ceiling(plans[group[0].key], name, mean_tokens, answer_s),
                Ceiling(sum(c.rate for c in own.values()), "models"),
            ]
        )
        if math.isinf(whole.rate):
            whole = Ceiling(UNLIMITED_RPS, "none")
        finite = [c.rate for c in own.values() if not math.isinf(c.rate)]
        shared = {}
        for t in group:
            mine = own[t.key]
            weight = 1 / len(group) if len(finite) < len(group) else mine.rate / sum(finite)
            split = whole.rate * weight
            shared[t.key] = (
                mine if mine.rate <= split * (1 + 1e-9) else Ceiling(split, whole.binding)
            )
        binding = _tightest(list(shared.values())).binding
        daily = _daily(
            [plans[t.key] for t in group], [levels.get(t.key) for t in group], mean_tokens, now
        )
        out[name] = ProviderCeiling(
            name, sum(c.rate for c in shared.values()), binding, daily, shared
        )
    return out
