"""The pooled ceiling of a run: the providers' binding ceilings (:mod:`relay_sim.ceiling`)
summed, so a bench can state the share of it that it reached::

    pool = pooled_ceiling(httpx.get(f"{sim_url}/_sim/stats").json())
    print(f"{pool.share(lines_done):.0%} of {pool.lines_allowed:.0f} lines allowed")

Providers that saw no request are not part of the run and are left out; those that saw some
and that nothing limits are listed in ``unbounded`` (their ceiling cannot be summed).
"""

from __future__ import annotations

from collections.abc import Collection

from pydantic import BaseModel, ConfigDict

from relay_sim.ceiling import Ceiling


class _ProviderStats(BaseModel):
    model_config = ConfigDict(extra="ignore")

    succeeded: int
    ceiling: Ceiling


class _Stats(BaseModel):
    model_config = ConfigDict(extra="ignore")

    providers: dict[str, _ProviderStats]


class PooledCeiling(BaseModel):
    model_config = ConfigDict(frozen=True)

    requests_per_s: float  # the providers' ceiling rates summed
    lines_allowed: float  # the lines their ceilings allowed, summed
    succeeded: int  # the lines they answered (200s), summed
    providers: dict[str, Ceiling]  # each one counted in the sums
    unbounded: list[str]  # saw requests, and nothing limits them

    def share(self, lines: int | None = None) -> float | None:
        """``lines`` (default: the answers the providers sent) as a share of the lines allowed;
        None when nothing was allowed (or a provider is unbounded)."""
        if self.unbounded or self.lines_allowed <= 0:
            return None
        return (self.succeeded if lines is None else lines) / self.lines_allowed


def pooled_ceiling(stats: object, names: Collection[str] | None = None) -> PooledCeiling:
    """Sum the ceilings in a ``GET /_sim/stats`` answer (of the providers ``names``, default
    all of them)."""
    parsed = _Stats.model_validate(stats)
    counted: dict[str, Ceiling] = {}
    unbounded: list[str] = []
    rate = lines = 0.0
    succeeded = 0
    for name, provider in sorted(parsed.providers.items()):
        c = provider.ceiling
        if (names is not None and name not in names) or not c.requests:
            continue
        if c.lines_allowed is None:
            unbounded.append(name)
            continue
        counted[name] = c
        rate += c.requests_per_s or 0.0
        lines += c.lines_allowed
        succeeded += provider.succeeded
    return PooledCeiling(
        requests_per_s=rate,
        lines_allowed=lines,
        succeeded=succeeded,
        providers=counted,
        unbounded=unbounded,
    )
