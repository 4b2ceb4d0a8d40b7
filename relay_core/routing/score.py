"""A target's score for one request: three terms, multiplied (docs/routing.md).

    score = load x success ** SUCCESS_POWER x latency

* ``load``: the share of its tightest bucket left (``headroom``, kept positive) times its
  catalogue ``weight``: what ``least_loaded`` ranked by alone, so with nothing learned the
  order is the same as before;
* ``success``: the posterior mean of a usable answer for this task family (or, on an
  exploring request, a Thompson draw from that posterior); raised to ``SUCCESS_POWER`` so a
  provider that fails a family visibly more often loses that family even with more headroom;
* ``latency``: ``1 / (1 + p50 / LATENCY_REF_S)`` of its learned answer time for the family,
  ``0.5`` while none is known (the same as an answer time of ``LATENCY_REF_S``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from relay_core.routing.outcomes.stats import UNKNOWN, Stats

SUCCESS_POWER = 8
LATENCY_REF_S = 2.0
MIN_HEADROOM = 0.01


@dataclass(frozen=True, slots=True)
class Terms:
    load: float
    success: float
    latency: float
    explored: bool = False

    @property
    def score(self) -> float:
        return self.load * self.success**SUCCESS_POWER * self.latency

    def describe(self) -> str:
        how = "draw" if self.explored else "mean"
        return (
            f"{self.score:.3g} = load {self.load:.2f} x success {self.success:.2f}"
            f"^{SUCCESS_POWER} ({how}) x latency {self.latency:.2f}"
        )


def load_term(headroom: float, weight: float) -> float:
    """``headroom x weight``; below :data:`MIN_HEADROOM` (a snapshot's headroom goes negative
    as requests are sent on it) it keeps falling but stays positive, so the other terms
    still scale it the right way."""
    if headroom < MIN_HEADROOM:
        headroom = MIN_HEADROOM / (1.0 + MIN_HEADROOM - headroom)
    return headroom * weight


def success_term(stats: Stats, explore: bool, rng: random.Random) -> float:
    return stats.sample(rng) if explore else stats.mean()


def latency_term(stats: Stats) -> float:
    p50 = stats.percentile(0.5)
    return 1.0 / (1.0 + (LATENCY_REF_S if p50 is None else p50) / LATENCY_REF_S)


def terms(
    headroom: float,
    weight: float,
    stats: Stats | None,
    *,
    explore: bool = False,
    rng: random.Random | None = None,
) -> Terms:
    s = stats or UNKNOWN
    return Terms(
        load=load_term(headroom, weight),
        success=success_term(s, explore, rng or random.Random()),
        latency=latency_term(s),
        explored=explore,
    )
