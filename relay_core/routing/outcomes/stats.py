"""One target's learned record for one task family: a Beta posterior of usable answers and a
histogram of answer times, both over a bounded, fading memory.

Counts are capped at :data:`WINDOW` observations (the store scales them down past it), so a
provider that gets worse is noticed within a few dozen answers however long its history; and
they fade with :data:`HALF_LIFE_S` while nobody calls it, back towards the prior, so a
provider left aside gets tried again.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass

# The prior: what a target nobody has heard from is worth (mean 0.9, as strong as 2 answers).
PRIOR_MEAN = 0.9
PRIOR_WEIGHT = 2.0
WINDOW = 50.0  # observations kept per target and family
HALF_LIFE_S = 600.0
# Upper edges of the latency buckets (seconds): 50 ms doubling to 102 s, the last one open.
LATENCY_EDGES: tuple[float, ...] = tuple(0.05 * 2.0**i for i in range(12))


def latency_bucket(seconds: float) -> int:
    return min(bisect.bisect_left(LATENCY_EDGES, seconds), len(LATENCY_EDGES) - 1)


@dataclass(frozen=True, slots=True)
class Stats:
    successes: float = 0.0
    failures: float = 0.0
    latency: tuple[float, ...] = ()  # answers per bucket of LATENCY_EDGES
    at: float = 0.0  # when last written (epoch seconds)

    @property
    def seen(self) -> float:
        return self.successes + self.failures

    def faded(self, now: float, half_life_s: float = HALF_LIFE_S) -> Stats:
        """These counts as they weigh ``now``: halved every ``half_life_s`` since written."""
        if now <= self.at or not self.seen:
            return self
        k = 0.5 ** ((now - self.at) / half_life_s)
        return Stats(self.successes * k, self.failures * k, tuple(n * k for n in self.latency), now)

    def alpha_beta(self) -> tuple[float, float]:
        return (
            PRIOR_MEAN * PRIOR_WEIGHT + self.successes,
            (1 - PRIOR_MEAN) * PRIOR_WEIGHT + self.failures,
        )

    def mean(self) -> float:
        """The posterior mean of a usable answer."""
        a, b = self.alpha_beta()
        return a / (a + b)

    def sample(self, rng: random.Random) -> float:
        """A Thompson draw from the posterior."""
        a, b = self.alpha_beta()
        return rng.betavariate(a, b)

    def percentile(self, q: float) -> float | None:
        """The answer time below which a share ``q`` of answers came (a bucket's upper
        edge), or None before any answer."""
        total = sum(self.latency)
        if total <= 0:
            return None
        seen = 0.0
        for i, n in enumerate(self.latency):
            seen += n
            if seen >= q * total:
                return LATENCY_EDGES[min(i, len(LATENCY_EDGES) - 1)]
        return LATENCY_EDGES[-1]


UNKNOWN = Stats()
