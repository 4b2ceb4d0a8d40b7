"""How long a batch would take at the farm's binding ceilings (Relay's extension).

The caller says how many lines name each model selection, and may say what a line costs
(its mean prompt tokens, as Relay counts them, and its mean ``max_tokens``; ``relay batch
estimate`` reads both from the file). The estimate resolves each selection's targets exactly as
validation and the feeder do, keeps the healthy ones, and gives each provider its **binding
ceiling** (:mod:`relay_core.batch.client.ceilings`): the tightest of its RPM and TPM as the
limiter paces them now (learned 429 shares included), and its concurrency over the answer
time. A token limit is divided by the tokens a line really costs: its prompt, plus the output
its provider *learned* to produce for the caller's requests (the mean completion tokens in the
caller's usage of that model, never above ``max_tokens``), or ``max_tokens`` (else 256) while
nothing is learned. Daily caps left stop a provider until they reset
(:mod:`relay_core.batch.client.finish`).

Lines already waiting in the caller's own running batches share that capacity, so the
estimate gives both figures (other tenants' lines are not counted: their activity is not the
caller's to see).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, Field

from relay_core.batch.client.ceilings import ProviderCeiling, provider_ceilings
from relay_core.batch.client.finish import DAY_S, finish_s
from relay_core.batch.run.planner import PROBE_RPS
from relay_core.limits.specs import Capacity, LimitPlan
from relay_core.routing.targets import Selection, Target
from relay_core.tokens import DEFAULT_OUTPUT_ESTIMATE


class RouteCount(BaseModel):
    model: str
    model_type: str | None = None
    model_scale: str | None = None
    model_name: str | None = None
    count: int = Field(ge=0)
    # What one line costs, on average (optional): prompt tokens as Relay counts them, and the
    # output cap (max_tokens / max_completion_tokens) of the lines that set one.
    prompt_tokens: float | None = Field(default=None, ge=0)
    max_tokens: float | None = Field(default=None, ge=0)

    def route(self) -> Selection:
        return Selection(self.model, self.model_type, self.model_scale, self.model_name)


class EstimateRequest(BaseModel):
    endpoint: str = "/v1/chat/completions"
    requests: list[RouteCount] = Field(min_length=1)
    # How long an answer takes, seconds (sizes concurrency limits); default: what the
    # caller's running batches measured, if any.
    answer_s: float | None = Field(default=None, gt=0)


class TargetRate(BaseModel):
    provider: str
    model: str
    rate_per_s: float
    healthy: bool
    rpd: int | None = None
    binding: str = "none"  # the limit that sets rate_per_s: rpm, tpm, concurrency, none
    tokens_per_line: float = 0.0


class ProviderRate(BaseModel):
    provider: str
    rate_per_s: float
    binding: str
    daily_lines_left: float | None = None  # None: no daily cap
    daily_resets_in_s: float | None = None


class Estimate(BaseModel):
    object: str = "batch.estimate"
    lines: int
    rate_per_s: float
    estimated_seconds: float
    backlog_lines: int
    estimated_seconds_with_backlog: float
    targets: list[TargetRate]
    providers: list[ProviderRate] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class FarmView:
    """What the estimate reads of the farm, per target key: the limiter's plan and levels,
    whether it is healthy and served, and what the caller's lines cost there so far."""

    plans: Mapping[str, LimitPlan]
    levels: Mapping[str, Capacity]
    able: set[str]
    now: float
    learned: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # prompt, output
    answer_s: float | None = None


def _daily_cap(t: Target) -> int | None:
    caps = [lim.rpd for lim in (t.provider.limits, t.model.limits) if lim and lim.rpd]
    return min(caps) if caps else None


def line_tokens(
    counts: Sequence[RouteCount],
    routes: Sequence[list[Target]],
    learned: Mapping[str, tuple[float, float]],
) -> dict[str, float]:
    """Tokens one line costs on each target: prompt (given, else learned) plus output
    (learned, capped by max_tokens; else max_tokens, else the executor's default). A provider
    that reserves the cap at admission (``tpm_counting: reserve``) is charged the whole cap,
    whatever its answers use."""
    sums: dict[str, list[float]] = {}
    for count, targets in zip(counts, routes, strict=True):
        for t in targets:
            prompt_l, output_l = learned.get(t.key, (0.0, math.nan))
            prompt = count.prompt_tokens if count.prompt_tokens is not None else prompt_l
            cap = count.max_tokens if count.max_tokens else float(DEFAULT_OUTPUT_ESTIMATE)
            reserves = t.provider.tpm_counting == "reserve"
            output = cap if reserves or math.isnan(output_l) else min(cap, output_l)
            entry = sums.setdefault(t.key, [0.0, 0.0])
            weight = max(1, count.count)
            entry[0] += (prompt + output) * weight
            entry[1] += weight
    return {k: total / n for k, (total, n) in sums.items()}


def estimate(
    counts: Sequence[RouteCount],
    resolve: Callable[[Selection], list[Target]],
    view: FarmView,
    backlog: int,
) -> Estimate:
    """The estimate for ``counts`` (resolve raises like validation for an unknown model)."""
    routes = [resolve(c.route()) for c in counts]
    targets = list({t.key: t for r in routes for t in r}.values())
    tokens = line_tokens(counts, routes, view.learned)
    able = [t for t in targets if t.key in view.able]
    ceilings = provider_ceilings(
        able,
        plans=view.plans,
        levels=view.levels,
        tokens=tokens,
        answer_s=view.answer_s,
        now=view.now,
    )
    lines = sum(c.count for c in counts)
    pooled = sum(c.rate for c in ceilings.values())
    warnings = []
    if not able:
        warnings.append("No provider for these models is healthy and served by a worker now.")
    seconds = _finish(lines, ceilings)
    with_backlog = _finish(lines + backlog, ceilings)
    if math.isinf(seconds):
        warnings.append(f"{lines:,} lines exceed what the daily caps allow in 31 days.")
    elif seconds > DAY_S:
        warnings.append(
            f"{lines:,} lines exceed what these providers' daily caps allow today: "
            f"the batch will take about {seconds / DAY_S:.1f} days."
        )
    return Estimate(
        lines=lines,
        rate_per_s=round(pooled if ceilings else PROBE_RPS, 3),
        estimated_seconds=round(seconds, 1),
        backlog_lines=backlog,
        estimated_seconds_with_backlog=round(with_backlog, 1),
        targets=[_target_rate(t, ceilings, tokens) for t in targets],
        providers=[_provider_rate(c) for c in ceilings.values()],
        warnings=warnings,
    )


def _finish(lines: int, ceilings: Mapping[str, ProviderCeiling]) -> float:
    if not ceilings:
        return lines / PROBE_RPS
    return finish_s(lines, [(c.rate, c.daily) for c in ceilings.values()])


def _target_rate(
    t: Target, ceilings: Mapping[str, ProviderCeiling], tokens: Mapping[str, float]
) -> TargetRate:
    found = ceilings.get(t.provider.name)
    ceiling = found.targets.get(t.key) if found is not None else None
    return TargetRate(
        provider=t.provider.name,
        model=t.model.id,
        rate_per_s=round(ceiling.rate, 3) if ceiling is not None else 0.0,
        healthy=ceiling is not None,
        rpd=_daily_cap(t),
        binding=ceiling.binding if ceiling is not None else "none",
        tokens_per_line=round(tokens.get(t.key, 0.0), 1),
    )


def _provider_rate(c: ProviderCeiling) -> ProviderRate:
    return ProviderRate(
        provider=c.provider,
        rate_per_s=round(c.rate, 3),
        binding=c.binding,
        daily_lines_left=round(c.daily.left, 1) if c.daily is not None else None,
        daily_resets_in_s=round(c.daily.resets_in_s, 1) if c.daily is not None else None,
    )
