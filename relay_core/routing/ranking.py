"""Order candidate targets: the best one first, given what the farm knows right now.

Every strategy puts targets that can serve *now* (breaker not open, tokens available) ahead of
those that cannot; the strategy only decides the order among the able ones. In ``auto`` mode
paid targets come after every free one, so they serve only when free capacity is exhausted.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from relay_core.catalogue.models import Tier
from relay_core.routing.targets import Target
from relay_core.settings import Mode, Strategy


@dataclass(frozen=True, slots=True)
class LiveState:
    """A target's condition now. Missing entries are treated as healthy and idle."""

    wait_s: float = 0.0  # until one request could pass every bucket
    headroom: float = 1.0  # fraction of the tightest request bucket left (0..1)
    breaker_open: bool = False
    latency_s: float | None = None  # recent upstream latency (EWMA)


IDLE = LiveState()


class Ranker:
    """Stateful only for round-robin's rotation (one per process, made at start-up)."""

    def __init__(self, strategy: Strategy, mode: Mode, rng: random.Random | None = None) -> None:
        self.strategy = strategy
        self.mode = mode
        self._rng = rng or random.Random()
        self._turn = 0

    def rank(self, targets: Sequence[Target], live: Mapping[str, LiveState]) -> list[Target]:
        if len(targets) <= 1:
            return list(targets)
        ordered = self._order(list(targets), live)
        # Stable sort: able before unable (then soonest capacity), free before paid in auto.
        return sorted(ordered, key=lambda t: self._class_of(t, live.get(t.key, IDLE)))

    def _class_of(self, t: Target, s: LiveState) -> tuple[int, int, float]:
        paid_last = int(self.mode is Mode.auto and t.provider.tier is Tier.paid)
        unable = int(s.breaker_open or s.wait_s > 0)
        return (paid_last, unable, s.wait_s if unable else 0.0)

    def _order(self, targets: list[Target], live: Mapping[str, LiveState]) -> list[Target]:
        if self.strategy is Strategy.random:
            self._rng.shuffle(targets)
            return targets
        if self.strategy is Strategy.roundrobin:
            self._turn = (self._turn + 1) % len(targets)
            return targets[self._turn :] + targets[: self._turn]
        if self.strategy is Strategy.weighted:
            return self._weighted(targets, live)
        return sorted(targets, key=lambda t: _load_key(t, live.get(t.key, IDLE)))

    def _weighted(self, targets: list[Target], live: Mapping[str, LiveState]) -> list[Target]:
        # Efraimidis-Spirakis: a weighted random order in one pass.
        def draw(t: Target) -> float:
            w = t.provider.weight * max(live.get(t.key, IDLE).headroom, 0.01)
            return float(self._rng.random() ** (1.0 / w))

        return sorted(targets, key=draw, reverse=True)


def _load_key(t: Target, s: LiveState) -> tuple[float, float]:
    # Most headroom (scaled by weight) first; recent latency breaks ties.
    return (-s.headroom * t.provider.weight, s.latency_s or 0.0)
