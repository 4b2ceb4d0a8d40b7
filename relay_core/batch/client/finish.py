"""When a batch would finish: the pooled ceilings, stopped by daily caps until they reset.

Each provider serves ``rate`` lines/s; one with a daily cap serves at most ``left`` lines
until its day turns, then up to ``per_day`` a day. Lines go to whoever has capacity (the
feeder spreads them by rate, and a line refused by a spent cap moves to another candidate),
so ``n`` lines are done at the first time ``T`` at which the providers together could have
served ``n``: :func:`finish_s` finds it by bisection over the (monotone) capacity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from relay_core.batch.client.ceilings import Daily

DAY_S = 86_400.0
HORIZON_S = 31 * DAY_S  # the longest batch window, and then some


def served(rate: float, daily: Daily | None, t: float) -> float:
    """Lines one provider can serve in the first ``t`` seconds."""
    if daily is None:
        return rate * t
    if t <= daily.resets_in_s:
        return min(rate * t, daily.left)
    days, into = divmod(t - daily.resets_in_s, DAY_S)
    full = min(rate * DAY_S, daily.per_day)
    return daily.left + days * full + min(rate * into, daily.per_day)


def finish_s(n: float, providers: Sequence[tuple[float, Daily | None]]) -> float:
    """Seconds until ``n`` lines are done (``math.inf`` if not within :data:`HORIZON_S`)."""
    if n <= 0:
        return 0.0

    def capacity(t: float) -> float:
        return sum(served(rate, daily, t) for rate, daily in providers)

    if capacity(HORIZON_S) < n:
        return math.inf
    lo, hi = 0.0, HORIZON_S
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if capacity(mid) >= n else (mid, hi)
        if hi - lo < 0.01:
            break
    return hi
