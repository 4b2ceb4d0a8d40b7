"""The binding ceiling: how many requests a provider's tightest limit let through over a run,
given the requests it saw. ``GET /_sim/stats`` reports it per provider (and per model), so a
bench can state the share of the ceiling it reached (:mod:`relay_sim.pooled` sums them).

A run is the *span* from the first request that reached the limits to the last answer (or to
now, while requests are in flight); :meth:`relay_sim.state.SimState.reset`, or a patch that
changes a limit, starts a new one. Over a span of ``T`` seconds each enforced limit (the hidden
figure when ``hidden_factor`` < 1, not the published one) allows:

==============  ===========================================================================
rpm, tpm        the window's budget once per window begun: ``L * (floor(T / window_s) + 1)``
                (a fresh window admits its whole budget at once), in whole requests: a
                window of 2.4 requests (a hidden 60 % of 4) admits 2
rpd, tpd        what was left of the day's cap at the first request, plus a whole cap per
                daily reset inside the span
concurrency     ``concurrency * T / mean answer time``
==============  ===========================================================================

Token budgets are turned into requests by the mean token cost of the requests seen: their
reservation (prompt + ``max_tokens``) under ``tpm_counting: reserve``, their answers' prompt +
completion tokens under ``usage``. A TPM window holds whole requests: with 340-token requests a
600-token window admits one, not 1.76 (``floor(L / cost)`` per window), which matters when a
request is a good part of the window's budget (per-second windows). A model's own limits bind
a provider through the model's share of its requests (a model that took half of them at 10
lines allows the provider 20).
The ceiling is the least of these; ``binding`` names it (``scope``: the model whose limit it
is, ``None`` for the provider's own), ``None`` when nothing limits the provider.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict

from relay_sim.limits import LimitKind, LimitName, LimitSet
from relay_sim.window import DailyWindow

Binding = LimitName | Literal["concurrency"]


@dataclass(slots=True)
class Demand:
    """What one provider (or model) was asked over the current run."""

    first_at: float | None = None
    last_at: float | None = None
    requests: int = 0  # that reached the limits (admitted or refused by them)
    charged_tokens: int = 0  # their admission charge against TPM/TPD, summed
    answers: int = 0  # answers produced
    answer_tokens: int = 0  # their prompt + completion tokens, summed
    answer_s: float = 0.0  # their planned answer times (first byte + output), summed
    daily_left: dict[LimitName, float] = field(default_factory=dict)  # at first_at

    def seen(self, limits: LimitSet, charge: int, now: float) -> None:
        """A request reached the limits (call before they debit it)."""
        if self.first_at is None:
            self.first_at = now
            self.daily_left = {
                b.name: max(0.0, b.window.limit - b.window.used(now))
                for b in limits.budgets
                if isinstance(b.window, DailyWindow)
            }
        self.requests += 1
        self.charged_tokens += charge
        self.ended(now)

    def answered(self, tokens: int, answer_s: float) -> None:
        self.answers += 1
        self.answer_tokens += tokens
        self.answer_s += answer_s

    def ended(self, now: float) -> None:
        if self.first_at is not None:
            self.last_at = now if self.last_at is None else max(self.last_at, now)

    def mean_tokens(self, usage: bool) -> float | None:
        if usage and self.answers:
            return self.answer_tokens / self.answers
        return self.charged_tokens / self.requests if self.requests else None

    def mean_answer_s(self) -> float | None:
        return self.answer_s / self.answers if self.answers else None


@dataclass(frozen=True, slots=True)
class Span:
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return max(0.0, self.end - self.start)


def allowed(limits: LimitSet, demand: Demand, span: Span, usage: bool) -> dict[Binding, float]:
    """Requests each limit of ``limits`` allowed over ``span`` (the ones that can be stated:
    a token budget needs a mean cost, concurrency a mean answer time)."""
    out: dict[Binding, float] = {}
    cost = demand.mean_tokens(usage)
    for budget in limits.budgets:
        window = budget.window
        if isinstance(window, DailyWindow):
            resets = window.resets_between(span.start, span.end)
            units = demand.daily_left.get(budget.name, window.limit) + window.limit * resets
        else:
            units = window.limit * (math.floor(span.seconds / window.length_s) + 1)
        if budget.kind == LimitKind.requests and not isinstance(window, DailyWindow):
            # Whole requests per window: a hidden 60 % of 4 a second admits 2, not 2.4.
            out[budget.name] = math.floor(window.limit) * units / window.limit
        elif budget.kind == LimitKind.requests:
            out[budget.name] = units
        elif cost and isinstance(window, DailyWindow):
            out[budget.name] = units / cost
        elif cost:  # whole requests per window
            per_window = max(1, math.floor(window.limit / cost))
            out[budget.name] = per_window * units / window.limit
    mean_s = demand.mean_answer_s()
    if limits.concurrency is not None and mean_s:
        out["concurrency"] = limits.concurrency * span.seconds / mean_s
    return out


class Ceiling(BaseModel):
    """One provider's (or model's) binding ceiling over a run, as ``/_sim/stats`` shows it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests: int  # the requests seen (that reached the limits)
    requests_per_s: float | None  # lines_allowed / span_s (None: unlimited, or no span)
    binding: Binding | None
    scope: str | None = None  # the model whose own limit binds; None: the provider's
    span_s: float
    lines_allowed: float | None  # None: unlimited
    mean_tokens: float | None = None  # mean token cost of the requests seen
    mean_answer_s: float | None = None  # mean planned answer time


def ceiling(
    limits: LimitSet,
    demand: Demand,
    span: Span,
    usage: bool,
    parts: Sequence[tuple[str, LimitSet, Demand]] = (),
) -> Ceiling:
    """The ceiling of ``limits`` over ``span``; ``parts``: each model's limits and demand,
    binding the whole through the model's share of the requests."""
    candidates: list[tuple[float, Binding, str | None]] = [
        (lines, name, None) for name, lines in allowed(limits, demand, span, usage).items()
    ]
    for model, model_limits, model_demand in parts:
        if not model_demand.requests or not demand.requests:
            continue
        share = model_demand.requests / demand.requests
        for name, lines in allowed(model_limits, model_demand, span, usage).items():
            candidates.append((lines / share, name, model))
    seconds = span.seconds if demand.requests else 0.0
    mean_tokens, mean_answer_s = demand.mean_tokens(usage), demand.mean_answer_s()
    if not candidates or not demand.requests:
        return Ceiling(
            requests=demand.requests,
            requests_per_s=None,
            binding=None,
            span_s=seconds,
            lines_allowed=None,
            mean_tokens=mean_tokens,
            mean_answer_s=mean_answer_s,
        )
    lines, binding, scope = min(candidates, key=lambda c: c[0])
    return Ceiling(
        requests=demand.requests,
        requests_per_s=lines / seconds if seconds > 0 else None,
        binding=binding,
        scope=scope,
        span_s=seconds,
        lines_allowed=lines,
        mean_tokens=mean_tokens,
        mean_answer_s=mean_answer_s,
    )
