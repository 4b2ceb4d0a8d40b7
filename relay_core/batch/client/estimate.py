"""How long a batch would take at the current pooled capacity (Relay's extension).

The caller says how many lines name each model selection; the estimate resolves each
selection's targets exactly as validation and the feeder do, keeps the healthy ones, and
divides by their pooled rate (see :mod:`relay_core.batch.run.planner`). Lines already waiting in
the caller's own running batches share that capacity, so the estimate gives both figures
(other tenants' lines are not counted: their activity is not the caller's to see). A daily
cap (``rpd``) smaller than the work is reported: such a batch spans days.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from pydantic import BaseModel, Field

from relay_core.batch.run.planner import PROBE_RPS, healthy, target_rates
from relay_core.routing.ranking import LiveState
from relay_core.routing.targets import Selection, Target


class RouteCount(BaseModel):
    model: str
    model_type: str | None = None
    model_scale: str | None = None
    model_name: str | None = None
    count: int = Field(ge=0)

    def route(self) -> Selection:
        return Selection(self.model, self.model_type, self.model_scale, self.model_name)


class EstimateRequest(BaseModel):
    endpoint: str = "/v1/chat/completions"
    requests: list[RouteCount] = Field(min_length=1)


class TargetRate(BaseModel):
    provider: str
    model: str
    rate_per_s: float
    healthy: bool
    rpd: int | None = None


class Estimate(BaseModel):
    object: str = "batch.estimate"
    lines: int
    rate_per_s: float
    estimated_seconds: float
    backlog_lines: int
    estimated_seconds_with_backlog: float
    targets: list[TargetRate]
    warnings: list[str] = Field(default_factory=list)


def _daily(t: Target) -> int | None:
    caps = [lim.rpd for lim in (t.provider.limits, t.model.limits) if lim and lim.rpd]
    return min(caps) if caps else None


def estimate(
    counts: Sequence[RouteCount],
    resolve: Callable[[Selection], list[Target]],
    live: Mapping[str, LiveState],
    served: set[str] | None,
    backlog: int,
) -> Estimate:
    """The estimate for ``counts`` (resolve raises like validation for an unknown model)."""
    union = {t.key: t for c in counts for t in resolve(c.route())}
    targets = list(union.values())
    rates = target_rates(targets)
    able = {t.key for t in healthy(targets, live, served)}
    pooled = max(PROBE_RPS, sum(rates[k] for k in able))
    lines = sum(c.count for c in counts)
    warnings = []
    if not able:
        warnings.append("No provider for these models is healthy and served by a worker now.")
    dailies = [_daily(t) for t in targets if t.key in able]
    if dailies and all(d is not None for d in dailies):
        per_day = sum(d for d in dailies if d is not None)
        if lines > per_day:
            warnings.append(
                f"{lines:,} lines exceed the {per_day:,} requests/day these providers allow: "
                f"the batch will take about {lines / per_day:.1f} days."
            )
    return Estimate(
        lines=lines,
        rate_per_s=round(pooled, 3),
        estimated_seconds=round(lines / pooled, 1),
        backlog_lines=backlog,
        estimated_seconds_with_backlog=round((lines + backlog) / pooled, 1),
        targets=[
            TargetRate(
                provider=t.provider.name,
                model=t.model.id,
                rate_per_s=round(rates[t.key], 3),
                healthy=t.key in able,
                rpd=_daily(t),
            )
            for t in targets
        ],
        warnings=warnings,
    )
