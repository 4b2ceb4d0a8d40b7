"""The one object the rest of Relay calls for circuit breakers.

One breaker per provider and one per provider/model. A worker asks before calling upstream and
reports after::

    keys = breaker.keys(provider.name, model.id)
    permit = await breaker.allow_all(keys, time.time())
    if not permit.allowed:
        raise CircuitOpen(..., retry_after=permit.retry_in_s)
    ok = ...call upstream...
    await breaker.record_permit(permit, ok, time.time())

Every method takes ``now`` in epoch seconds; callers pass ``time.time()``.

A worker builds its breaker with ``tally_s``: the successes of a closed breaker (no probe) are
then counted in memory and written together within ``tally_s`` (:class:`relay_core.tally.Tally`),
one script call for all of them instead of one per call. Any other outcome writes the tallied
successes first, then itself, at once: failures open breakers as promptly as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from relay_core.breaker.backends.base import BreakerBackend
from relay_core.breaker.policy import (
    BreakerPolicy,
    BreakerState,
    BreakerStatus,
    DisabledKey,
    Permit,
)
from relay_core.settings import Settings
from relay_core.tally import Tally


class Breaker:
    def __init__(
        self,
        backend: BreakerBackend,
        policy: BreakerPolicy,
        prefix: str,
        *,
        tally_s: float | None = None,
    ) -> None:
        self.backend = backend
        self.policy = policy
        self.prefix = prefix
        self.successes: Tally[tuple[str, ...]] | None = None
        self._tallied_at = 0.0
        if tally_s is not None:
            self.successes = Tally(self._write_successes, tally_s, "breaker successes")

    @classmethod
    def from_settings(
        cls, settings: Settings, backend: BreakerBackend, *, tally_s: float | None = None
    ) -> Breaker:
        policy = BreakerPolicy.from_settings(settings)
        return cls(backend, policy, settings.key("breaker"), tally_s=tally_s)

    def key(self, provider: str, model: str | None = None) -> str:
        """The breaker of a provider, or of one model of it."""
        scope = provider if model is None else f"{provider}/{model}"
        return f"{self.prefix}:state:{scope}"

    def keys(self, provider: str, model: str) -> tuple[str, str]:
        """Both breakers a call to ``model`` on ``provider`` goes through."""
        return self.key(provider), self.key(provider, model)

    async def allow(self, key: str, now: float) -> Permit:
        """May a call go through this breaker now? (Half-open: only the one probe may.)"""
        return await self.backend.allow([key], self.policy, now)

    async def allow_all(self, keys: Sequence[str], now: float) -> Permit:
        """:meth:`allow` for several breakers at once: all of them allow it, or none is touched
        (no probe lease is taken on one breaker for a call another one refuses)."""
        return await self.backend.allow(keys, self.policy, now)

    async def record(self, key: str, success: bool, now: float, *, probe: bool = False) -> None:
        """Report a call's outcome; ``probe`` when :meth:`allow` granted it as the probe."""
        await self.backend.record([key], [probe], success, self.policy, now)

    async def record_permit(self, permit: Permit, success: bool, now: float) -> None:
        """Report a call's outcome under every breaker its permit went through."""
        if not (permit.allowed and permit.keys):
            return
        if self.successes is not None:
            if success and permit.state is BreakerState.closed and not permit.probe_keys:
                self.successes.add(tuple(permit.keys))
                self._tallied_at = now  # written as of the latest success
                return
            await self.successes.flush()  # the successes before this outcome count first
        probes = [key in permit.probe_keys for key in permit.keys]
        await self.backend.record(permit.keys, probes, success, self.policy, now)

    async def _write_successes(self, counts: Mapping[tuple[str, ...], int]) -> None:
        for keys, n in counts.items():
            await self.backend.record(
                keys, [False] * len(keys), True, self.policy, self._tallied_at, count=n
            )

    async def aclose(self) -> None:
        """Write the tallied successes (at shutdown)."""
        if self.successes is not None:
            await self.successes.aclose()

    async def answers_others(self, key: str, now: float) -> bool:
        """Whether the breaker saw successes in its window (this worker's tallied ones
        written first)."""
        if self.successes is not None:
            await self.successes.flush()
        (status,) = await self.backend.state([key], self.policy, now)
        return status.calls > status.failures

    async def state(self, keys: Sequence[str], now: float) -> list[BreakerStatus]:
        """How each breaker stands (no side effects), in the order asked."""
        if not keys:
            return []
        return await self.backend.state(keys, self.policy, now)

    # ---- keys that failed authentication ---------------------------------------------------

    def _disabled_key(self, provider: str) -> str:
        return f"{self.prefix}:disabled:{provider}"

    async def disable(self, provider: str, key_fingerprint: str, reason: str, now: float) -> None:
        """Keep traffic off ``provider`` until its API key changes (see ``fingerprint``)."""
        disabled = DisabledKey(key_fingerprint, reason, now)
        await self.backend.disable(self._disabled_key(provider), disabled)

    async def is_disabled(self, provider: str, key_fingerprint: str) -> bool:
        """True while the key with this fingerprint is the one that was disabled."""
        found = await self.backend.disabled(self._disabled_key(provider))
        return found is not None and found.fingerprint == key_fingerprint

    async def disabled(self, provider: str) -> DisabledKey | None:
        """Which key was disabled and why (status screens)."""
        return await self.backend.disabled(self._disabled_key(provider))

    async def enable(self, provider: str) -> None:
        """Forget a disabled key (an operator says it works again)."""
        await self.backend.enable(self._disabled_key(provider))
