"""How fast a batch may be fed, and which provider each line goes to first.

The pooled capacity of a set of targets is the sum over their providers of each provider's
request rate (its ``rpm``, capped by the sum of its models' own ``rpm``), paced as the limiter
paces (:data:`relay_core.limits.plan.PACING_MARGIN` under the published rate). Targets whose
breaker is open, that are paused for long, or that no live worker serves take no lines.

Lines are spread over the healthy targets in proportion to their rates by a smooth weighted
round-robin (nginx's), so each provider's queue receives its share, interleaved: no provider
is handed a burst it cannot absorb while another idles. The batch's window (lines in flight)
is shared the same way (:func:`provider_shares`): a provider that hangs, or answers slowly,
fills its own share and no more, and the others keep being fed.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from relay_core.dispatch.envelope import Candidate
from relay_core.limits.plan import PACING_MARGIN
from relay_core.routing.ranking import IDLE, LiveState
from relay_core.routing.targets import Target

# Pace for a provider that publishes no request rate (a local Ollama, say), lines/s.
UNLIMITED_RPS = 5.0
# A target whose capacity is further away than this takes no new lines for now.
LONG_WAIT_S = 5.0
# When no target is healthy, lines still trickle out at this rate (they back off in workers).
PROBE_RPS = 0.5
MAX_CANDIDATES = 8
# Lines in flight cover this many mean answer times (Little's law needs the mean; heavy-tailed
# answers, lognormal with sigma ~0.7, have a p90 of about 2.5 x their mean, and a straggler
# holds its slot that long: with the mean alone the window starves behind them).
TAIL_COVER = 2.5
# The feeder claims lines this much faster than the rates the workers' limiter enforces
# (RPM, TPM, concurrency): fed at exactly the rate they drain, the lines waiting at a
# provider are a random walk with no drift (a critically loaded queue), empty at many of its
# slots, and a slot nobody takes is lost for good. Fed faster, each provider's share of the
# window is what bounds the lines waiting, and the limiter alone sets the pace. Limits that
# only the feeder enforces (a daily cap spread over the batch's time) are fed at their rate.
OVERFEED = 1.25


def _rps(rpm: int | None) -> float:
    return math.inf if rpm is None else rpm / 60 * (1 - PACING_MARGIN)


def target_rates(targets: Sequence[Target]) -> dict[str, float]:
    """Lines/s each target can absorb: its provider's rate shared among the provider's targets
    (in proportion to their own caps, equally when they have none)."""
    by_provider: dict[str, list[Target]] = defaultdict(list)
    for t in targets:
        by_provider[t.provider.name].append(t)
    rates: dict[str, float] = {}
    for group in by_provider.values():
        provider_cap = _rps(group[0].provider.limits.rpm)
        own = [_rps(t.model.limits.rpm if t.model.limits else None) for t in group]
        cap = min(provider_cap, sum(own))
        if math.isinf(cap):
            cap = UNLIMITED_RPS
        finite = [o for o in own if not math.isinf(o)]
        for t, o in zip(group, own, strict=True):
            share = cap / len(group) if len(finite) < len(group) else cap * o / sum(finite)
            rates[t.key] = min(share, o)
    return rates


def healthy(
    targets: Sequence[Target], live: Mapping[str, LiveState], served: set[str] | None
) -> list[Target]:
    """Targets that can take lines now: breaker closed, not paused for long, and consumed by
    a live worker (``served`` None: do not filter on workers)."""
    out = []
    for t in targets:
        state = live.get(t.key, IDLE)
        if state.breaker_open or state.wait_s > LONG_WAIT_S:
            continue
        if served is not None and t.provider.name not in served:
            continue
        out.append(t)
    return out


@dataclass
class Assigner:
    """Smooth weighted round-robin over one route's targets (kept across ticks)."""

    current: dict[str, float] = field(default_factory=dict)

    def pick(self, weights: Mapping[str, float]) -> str:
        total = sum(weights.values())
        best, best_w = "", -math.inf
        for key, w in weights.items():
            self.current[key] = self.current.get(key, 0.0) + w
            if self.current[key] > best_w:
                best, best_w = key, self.current[key]
        self.current[best] -= total
        return best


def candidates(
    first: str, able: Sequence[Target], everyone: Sequence[Target], rates: Mapping[str, float]
) -> list[Candidate]:
    """``first``, then the other able targets by rate, then the rest: the order a line tries."""
    by_key = {t.key: t for t in everyone}
    rest = sorted((t for t in able if t.key != first), key=lambda t: -rates.get(t.key, 0.0))
    others = [t for t in everyone if t.key != first and t not in rest]
    ordered = [by_key[first], *rest, *others][:MAX_CANDIDATES]
    return [Candidate(provider=t.provider.name, model=t.model.id) for t in ordered]


@dataclass(frozen=True, slots=True)
class Pace:
    rate: float  # lines/s this batch may take (its share of the pooled rate)
    burst: float  # lines the pacing bucket may hold
    window: int  # lines in flight at most
    upstream_s: float = 0.0  # the providers' recent mean answer time
    slack_s: float = 0.0  # in flight beyond the answer times (RELAY_BATCH_WINDOW_S)
    feed: float = 0.0  # lines/s the feeder claims at (OVERFEED x the limiter-paced part)

    @classmethod
    def of(
        cls,
        pooled_rps: float,
        *,
        share: float,
        window_s: float,
        tick_s: float,
        upstream_s: float = 0.0,
        feedable_rps: float | None = None,
    ) -> Pace:
        """Take the batch's share of the pooled rate, with as many lines in flight as
        cover ``TAIL_COVER`` x the providers' recent mean answer time plus ``window_s`` of
        slack (queueing, jitter): enough to keep every bucket busy behind the slow answers,
        no more to wait behind. ``tick_s``: the time between two of the feeder's claims (its
        tick, or longer when the tick ran late): the bucket holds twice what accrues in it.
        ``feedable_rps``: the pooled rate with its limiter-paced part raised by ``OVERFEED``
        (the rate itself when not given)."""
        # The probe's trickle only when no target can take lines: a pool whose limits allow
        # few (a daily cap spread over the day) is fed no faster than they allow.
        rate = pooled_rps * share if pooled_rps > 0 else PROBE_RPS
        feed = (feedable_rps if feedable_rps is not None else pooled_rps) * share
        feed = max(rate, feed)
        return cls(
            rate=rate,
            burst=max(1.0, feed * tick_s * 2),
            window=max(4, math.ceil(rate * (TAIL_COVER * upstream_s + window_s))),
            upstream_s=upstream_s,
            slack_s=window_s,
            feed=feed,
        )


def provider_shares(
    pace: Pace, able: Sequence[Target], rates: Mapping[str, float], answer_s: Mapping[str, float]
) -> dict[str, int]:
    """Each able target's provider's share of the lines in flight: its part of the batch's
    rate (in proportion to its own; equal parts when none has one) times ``TAIL_COVER`` x its
    own recent answer time (``answer_s``; the batch's when it answered none yet) plus the
    slack, at least one line. Little's law per provider: a slow provider gets the room its
    answers need, and a hung one (whose answers never come) holds its share and no more."""
    by_provider: dict[str, float] = defaultdict(float)
    for t in able:
        by_provider[t.provider.name] += rates.get(t.key, 0.0)
    total = sum(by_provider.values())
    out = {}
    for name, r in by_provider.items():
        part = r / total if total > 0 else 1 / len(by_provider)
        answer = answer_s.get(name, pace.upstream_s)
        out[name] = max(1, math.ceil(pace.rate * part * (TAIL_COVER * answer + pace.slack_s)))
    return out
