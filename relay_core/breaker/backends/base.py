"""The contract every breaker backend keeps.

Semantics (both backends, checked by one contract suite; see docs/limits.md):

* No state is a closed breaker with a fresh window and the base cool-down.
* ``allow`` grants a call when every key is closed, or is half-open (an open breaker whose
  cool-down has ended) with no probe in flight; then each such key gets a probe lease
  (``probe_ttl_s``). Otherwise it refuses, and nothing changes.
* ``record`` counts a closed breaker's result in its window; a failure opens it when the
  consecutive failures reach ``failures`` or the window's ratio reaches ``ratio`` (with at
  least ``min_calls``). A probe's success closes a half-open breaker; its failure opens it
  again with the cool-down doubled (capped). Results arriving while a breaker is open or
  half-open, other than the probe's, are ignored: those calls began before it opened.
  ``count`` records that many calls with the same result at once (a worker's tallied successes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from relay_core.breaker.policy import BreakerPolicy, BreakerStatus, DisabledKey, Permit


class BreakerBackend(Protocol):
    async def allow(self, keys: Sequence[str], policy: BreakerPolicy, now: float) -> Permit: ...

    async def record(
        self,
        keys: Sequence[str],
        probes: Sequence[bool],
        success: bool,
        policy: BreakerPolicy,
        now: float,
        *,
        count: int = 1,
    ) -> None: ...

    async def state(
        self, keys: Sequence[str], policy: BreakerPolicy, now: float
    ) -> list[BreakerStatus]: ...

    async def disable(self, key: str, disabled: DisabledKey) -> None: ...

    async def disabled(self, key: str) -> DisabledKey | None: ...

    async def enable(self, key: str) -> None: ...
