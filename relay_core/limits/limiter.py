"""The one object the rest of Relay calls for global limits.

Built once at start-up around a backend (Redis in production, memory in unit tests) and passed
down. Every method takes ``now`` in epoch seconds; callers pass ``time.time()``.
"""

from __future__ import annotations

from collections.abc import Sequence

from relay_core.catalogue.models import ModelConfig, ProviderConfig
from relay_core.limits.adaptive import AdaptiveCaps, AdaptiveStore
from relay_core.limits.backends.base import LimitBackend, token_limits
from relay_core.limits.costs import CostStore, LearnedCosts, MemoryCosts
from relay_core.limits.feedback import pause_scope, remaining_from
from relay_core.limits.learned import LearnedRates, LearnedStore
from relay_core.limits.plan import build_specs, pause_key
from relay_core.limits.specs import Capacity, Decision, LimitPlan, Remaining
from relay_core.providers.base import RateLimitFeedback
from relay_core.settings import Settings


class Limiter:
    def __init__(
        self,
        backend: LimitBackend,
        prefix: str,
        learned: LearnedRates | None = None,
        costs: LearnedCosts | None = None,
        adaptive: AdaptiveCaps | None = None,
    ) -> None:
        self.backend = backend
        self.prefix = prefix
        # Rates learned from 429s (workers pace with them; elsewhere plans are as published).
        self.learned = learned
        # Token costs learned from usage (workers share them in Redis; elsewhere in memory).
        self.costs = costs if costs is not None else LearnedCosts(MemoryCosts(), prefix)
        # Concurrency learned by AIMD where the catalogue asks for it (workers cap with it).
        self.adaptive = adaptive
        self._paused: dict[str, float] = {}  # provider -> until when this process paused it

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        backend: LimitBackend,
        learned: LearnedStore | None = None,
        costs: CostStore | None = None,
        adaptive: AdaptiveStore | None = None,
    ) -> Limiter:
        prefix = settings.key("limits")
        return cls(
            backend,
            prefix,
            None if learned is None else LearnedRates(learned, prefix),
            None if costs is None else LearnedCosts(costs, prefix),
            None if adaptive is None else AdaptiveCaps(adaptive, prefix),
        )

    def plan(
        self,
        provider: ProviderConfig,
        model: ModelConfig,
        now: float,
        *,
        lease_ttl_s: float | None = None,
    ) -> LimitPlan:
        """Every limit of ``model`` on ``provider`` at ``now`` (build one per attempt)."""
        factor = 1.0 if self.learned is None else self.learned.factor(provider.name, now)
        slots = None if self.adaptive is None else self.adaptive.slots
        return build_specs(
            self.prefix,
            provider,
            model,
            now,
            lease_ttl_s=lease_ttl_s,
            factor=factor,
            learned_slots=slots,
        )

    async def acquire(
        self,
        plan: LimitPlan,
        cost_tokens: int,
        lease_id: str,
        now: float,
        *,
        reserve_s: float = 0.0,
    ) -> Decision:
        """Take 1 request and ``cost_tokens`` from every limit of ``plan`` and a concurrency
        slot for ``lease_id``, or nothing: then ``wait_s`` says when all could pass.

        With ``reserve_s``, a request that only the token buckets hold back, for at most that
        long, is granted a reserved slot: its tokens are taken now and ``wait_s`` is the delay
        before it may start (the caller waits it out, then calls). Slots are thus handed out
        one refill apart, in order, and none is lost to a caller waking late.
        """
        if cost_tokens < 0:
            raise ValueError("cost_tokens must be >= 0")
        if reserve_s < 0:
            raise ValueError("reserve_s must be >= 0")
        return await self.backend.acquire(plan, cost_tokens, lease_id, now, reserve_s)

    async def release(
        self,
        plan: LimitPlan,
        lease_id: str,
        actual_tokens: int,
        estimated_tokens: int,
        now: float,
    ) -> None:
        """Free ``lease_id``'s slots and correct the token limits by actual - estimated.

        Nothing to free and nothing to correct (no concurrency cap, and no token limit or an
        exact estimate) costs no round trip."""
        delta = actual_tokens - estimated_tokens
        if not plan.concurrency and (delta == 0 or not any(token_limits(plan))):
            return
        await self.backend.release(plan, lease_id, delta, now)

    async def shift(self, plan: LimitPlan, late_s: float, now: float) -> None:
        """A request granted a reserved slot went out ``late_s`` after it: move the slots of
        ``plan``'s token buckets after it back by as much (each bucket owes ``late_s`` of its
        refill), so the spacing between calls as the provider sees them stays one refill."""
        if late_s > 0 and plan.buckets:
            await self.backend.shift(plan, late_s, now)

    async def pause(
        self, provider: str, until: float, now: float, *, model: str | None = None
    ) -> None:
        """Refuse every plan of ``provider`` (or of one model of it) until ``until``."""
        self._paused[provider] = max(until, self._paused.get(provider, 0.0))
        await self.backend.pause(pause_key(self.prefix, provider, model), until, now)

    def paused_here(self, provider: str, now: float) -> float:
        """Seconds ``provider`` (or a model of it) stays paused by a pause this process set (0:
        none): a call that reserved its slot before the pause checks it before it goes out."""
        return max(0.0, self._paused.get(provider, 0.0) - now)

    async def lower(
        self,
        plan: LimitPlan,
        now: float,
        *,
        rpm: float | None = None,
        tpm: float | None = None,
        rpd: float | None = None,
        tpd: float | None = None,
    ) -> None:
        """An upstream said how much is left of each kind: never let our view exceed it."""
        await self.backend.lower(plan, Remaining(rpm=rpm, tpm=tpm, rpd=rpd, tpd=tpd), now)

    async def apply_feedback(
        self, plan: LimitPlan, feedback: RateLimitFeedback, now: float
    ) -> None:
        """Lower our view to what the upstream reported and honour its ``retry-after``
        (see :mod:`relay_core.limits.feedback` for how headers map to limits)."""
        remaining = remaining_from(plan, feedback)
        if remaining != Remaining():
            await self.backend.lower(plan, remaining, now)
        if feedback.retry_after_s is not None and feedback.retry_after_s > 0:
            until = now + feedback.retry_after_s
            await self.pause(plan.provider, until, now, model=pause_scope(plan))

    async def peek(self, plan: LimitPlan, now: float, cost_tokens: int = 1) -> Capacity:
        """The levels of ``plan`` and the wait before a ``cost_tokens`` request could pass."""
        (seen,) = await self.backend.peek_many([plan], cost_tokens, now)
        return seen

    async def peek_many(
        self, plans: Sequence[LimitPlan], now: float, cost_tokens: int = 1
    ) -> list[Capacity]:
        """:meth:`peek` for many plans in one round trip (routing ranks candidates with it)."""
        if not plans:
            return []
        return await self.backend.peek_many(plans, cost_tokens, now)
