"""Order candidate targets: the best one first, given what the farm knows right now.

Every strategy puts targets that can serve *now* (breaker not open, tokens available) ahead of
those that cannot; the strategy only decides the order among the able ones. ``least_loaded``
and ``weighted`` order by the score of :mod:`relay_core.routing.score` (load, learned
success and latency for the request's task family); ``roundrobin`` and ``random`` ignore it.

Tier modes: ``free`` never ranks a paid target (they are dropped here too, whatever the
candidate set held); ``auto`` puts paid targets after every free one unless it escalates:
when the request needs what no free candidate has (vision), or the learned success of the
best free candidate for this family is under ``escalate_below`` and a paid one does better;
``paid`` ranks them like the rest.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from relay_core.catalogue.models import Tier
from relay_core.profile.models import Profile
from relay_core.routing.outcomes.cache import NOTHING
from relay_core.routing.outcomes.stats import UNKNOWN, Stats
from relay_core.routing.score import Terms, terms
from relay_core.routing.targets import Target
from relay_core.settings import Mode, Strategy

VISION = "vision"


@dataclass(frozen=True, slots=True)
class LiveState:
    """A target's condition now. Missing entries are treated as healthy and idle."""

    wait_s: float = 0.0  # until one request could pass every bucket
    headroom: float = 1.0  # fraction of the tightest request bucket left (0..1)
    breaker_open: bool = False
    latency_s: float | None = None  # recent upstream latency (EWMA)


IDLE = LiveState()


@dataclass(frozen=True, slots=True)
class Ranked:
    """A ranking and why: each target's score terms, and what the mode decided."""

    targets: list[Target]
    terms: Mapping[str, Terms] = field(default_factory=dict)
    explored: bool = False  # success terms were Thompson draws, not means
    escalated: bool = False  # auto: paid targets were ranked with the free ones


class Ranker:
    """Stateful only for round-robin's rotation and its random draws (one per process, made
    at start-up). ``explore`` is the share of rankings whose success terms are Thompson
    draws; the rest use the posterior means."""

    def __init__(
        self,
        strategy: Strategy,
        mode: Mode,
        rng: random.Random | None = None,
        *,
        explore: float = 0.0,
        escalate_below: float = 0.7,
    ) -> None:
        self.strategy = strategy
        self.mode = mode
        self.explore = explore
        self.escalate_below = escalate_below
        self._rng = rng or random.Random()
        self._turn = 0

    def rank(self, targets: Sequence[Target], live: Mapping[str, LiveState]) -> list[Target]:
        return self.route(targets, live).targets

    def route(
        self,
        targets: Sequence[Target],
        live: Mapping[str, LiveState],
        learned: Mapping[str, Stats] = NOTHING,
        profile: Profile | None = None,
        mode: Mode | None = None,
    ) -> Ranked:
        """``targets`` ranked; ``mode`` (a policy's) in place of the process's mode."""
        mode = mode or self.mode
        if mode is Mode.free:
            targets = [t for t in targets if t.provider.tier is Tier.free]
        if len(targets) <= 1:
            return Ranked(list(targets))
        explore = self.explore > 0 and self._rng.random() < self.explore
        scored = {
            t.key: terms(
                live.get(t.key, IDLE).headroom,
                t.provider.weight,
                learned.get(t.key),
                explore=explore,
                rng=self._rng,
            )
            for t in targets
        }
        escalated = mode is Mode.auto and self.escalates(targets, learned, profile)
        ordered = self._order(list(targets), live, scored)
        # Stable sort: able before unable (then soonest capacity), free before paid in auto.
        paid_last = mode is Mode.auto and not escalated
        ranked = sorted(ordered, key=lambda t: _class_of(t, live.get(t.key, IDLE), paid_last))
        return Ranked(ranked, scored, explore, escalated)

    def escalates(
        self, targets: Sequence[Target], learned: Mapping[str, Stats], profile: Profile | None
    ) -> bool:
        """Whether ``auto`` lets paid targets compete with the free ones for this request."""
        free = [t for t in targets if t.provider.tier is Tier.free]
        paid = [t for t in targets if t.provider.tier is Tier.paid]
        if not free or not paid:
            return False
        needs_vision = profile is not None and profile.needs.vision
        if needs_vision and not any(VISION in t.model.type for t in free):
            return True
        best_free = max(learned.get(t.key, UNKNOWN).mean() for t in free)
        best_paid = max(learned.get(t.key, UNKNOWN).mean() for t in paid)
        return best_free < self.escalate_below and best_paid > best_free

    def _order(
        self, targets: list[Target], live: Mapping[str, LiveState], scored: Mapping[str, Terms]
    ) -> list[Target]:
        if self.strategy is Strategy.random:
            self._rng.shuffle(targets)
            return targets
        if self.strategy is Strategy.roundrobin:
            self._turn = (self._turn + 1) % len(targets)
            return targets[self._turn :] + targets[: self._turn]
        if self.strategy is Strategy.weighted:
            return self._weighted(targets, scored)
        return sorted(
            targets, key=lambda t: (-scored[t.key].score, live.get(t.key, IDLE).latency_s or 0.0)
        )

    def _weighted(self, targets: list[Target], scored: Mapping[str, Terms]) -> list[Target]:
        # Efraimidis-Spirakis: a weighted random order in one pass.
        def draw(t: Target) -> float:
            w = max(scored[t.key].score, 1e-12)
            return float(self._rng.random() ** (1.0 / w))

        return sorted(targets, key=draw, reverse=True)


def _class_of(t: Target, s: LiveState, paid_last: bool) -> tuple[int, int, float]:
    late = int(paid_last and t.provider.tier is Tier.paid)
    unable = int(s.breaker_open or s.wait_s > 0)
    return (late, unable, s.wait_s if unable else 0.0)
