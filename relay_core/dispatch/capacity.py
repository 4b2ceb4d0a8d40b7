"""How many calls a worker process keeps in flight: Little's law on measured times.

A call holds one of the worker's slots (a pool thread waiting on the event loop) from the
moment its message is taken until its visit ends. To keep a provider busy at ``λ`` calls/s
while each holds its slot ``W`` seconds, ``λ·W`` slots are needed (Little's law). Here

- ``λ`` is the provider's paced request rate (:func:`provider_rates`: its RPM, capped by its
  models' own, 2 % under as the limiter paces), shared among the live workers serving it;
- ``W`` is *measured*, tail included (:meth:`SlotTimes.hold_s`): the 90th percentile of this
  worker's recent slot times for the provider, or, while calls are out and none has come back
  yet (the first answers of a slow provider), twice the mean age of those in flight, so a
  worker whose calls take 10 s grows before the first one answers.

:func:`slots_needed` adds ``λ·W`` over the providers served, with :data:`HEADROOM`, capped per
provider by its ``concurrency`` limit; the worker keeps that many slots, never fewer than
``RELAY_WORKER_CONCURRENCY`` nor more than ``RELAY_WORKER_MAX_CONCURRENCY``
(``relay_workers/elastic.py``).

:class:`Recent` is also what hedging reads (``relay_core.batch.run.hedge``): the p99 of the
answer times a provider gave this worker.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

from relay_core.catalogue.models import ProviderConfig
from relay_core.limits.plan import PACING_MARGIN

# Slots beyond λ·W: answer times and arrivals both fluctuate around their means.
HEADROOM = 1.25
# The tail of slot times Little's law is applied to (the mean would starve behind stragglers).
HOLD_QUANTILE = 0.9
# Pace for a provider that publishes no request rate (a local Ollama, say), calls/s; the
# batch planner assumes the same (relay_core.batch.run.planner.UNLIMITED_RPS).
UNLIMITED_RPS = 5.0
KEEP = 256  # recent times kept per provider


def _rps(rpm: int | None) -> float:
    return math.inf if rpm is None else rpm / 60 * (1 - PACING_MARGIN)


def provider_rate(provider: ProviderConfig) -> float:
    """Calls/s ``provider`` may take: its RPM, capped by the sum of its models' own."""
    own = [_rps(m.limits.rpm if m.limits else None) for m in provider.models]
    rate = min(_rps(provider.limits.rpm), sum(own) if own else math.inf)
    return UNLIMITED_RPS if math.isinf(rate) else rate


def provider_rates(providers: Sequence[ProviderConfig]) -> dict[str, float]:
    return {p.name: provider_rate(p) for p in providers}


def provider_caps(providers: Sequence[ProviderConfig]) -> dict[str, int | None]:
    """Each provider's ``concurrency`` limit (None: none published)."""
    return {p.name: p.limits.concurrency for p in providers}


class Recent:
    """The last :data:`KEEP` values of something, per provider, and their quantiles."""

    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep
        self._values: dict[str, deque[float]] = {}

    def add(self, provider: str, value: float) -> None:
        found = self._values.get(provider)
        if found is None:
            found = self._values[provider] = deque(maxlen=self.keep)
        found.append(value)

    def count(self, provider: str) -> int:
        return len(self._values.get(provider, ()))

    def quantile(self, provider: str, q: float) -> float | None:
        """The ``q`` quantile (0..1) of the values kept, None with none."""
        values = self._values.get(provider)
        if not values:
            return None
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


class SlotTimes:
    """How long this worker's visits hold their slot, per provider: those that ended (recent)
    and those still running (their start). Used from the worker's one event-loop thread."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.done = Recent()
        self._running: dict[str, dict[int, float]] = {}
        self._ids = itertools.count()

    @contextmanager
    def track(self, provider: str) -> Iterator[None]:
        visit, start = next(self._ids), self.clock()
        running = self._running.setdefault(provider, {})
        running[visit] = start
        try:
            yield
        finally:
            running.pop(visit, None)
            self.done.add(provider, self.clock() - start)

    def hold_s(self, provider: str) -> float:
        """The slot time to plan for: the recent p90, or twice the mean age of the visits in
        flight when that is longer (they have not come back yet, so they will take longer)."""
        ended = self.done.quantile(provider, HOLD_QUANTILE) or 0.0
        running = self._running.get(provider)
        if not running:
            return ended
        now = self.clock()
        age = sum(now - s for s in running.values()) / len(running)
        return max(ended, 2 * age)


def slots_needed(
    rates: Mapping[str, float],
    times: SlotTimes,
    workers: Mapping[str, int],
    caps: Mapping[str, int | None] | None = None,
) -> float:
    """Slots this worker needs: over the providers it serves (``rates``), its share of each
    one's rate (``workers[p]`` live workers serve it, this one included) times the slot time,
    with :data:`HEADROOM`; no more for a provider than its ``caps`` (concurrency) allow."""
    total = 0.0
    for provider, rate in rates.items():
        share = max(1, workers.get(provider, 1))
        need = rate / share * times.hold_s(provider) * HEADROOM
        cap = (caps or {}).get(provider)
        if cap is not None:
            need = min(need, cap / share * HEADROOM)
        total += need
    return total
