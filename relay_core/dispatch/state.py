"""A worker process's view of the farm: its providers, the shared limits and breakers.

Built once per process at start-up (see ``relay_workers.runtime``) and handed to the executor.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from relay_core.breaker import Breaker, BreakerState, Permit
from relay_core.catalogue.models import ModelConfig, ProviderConfig
from relay_core.dispatch.envelope import Candidate
from relay_core.errors import (
    CircuitOpen,
    RateLimited,
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamError,
)
from relay_core.limits import Limiter, LimitPlan
from relay_core.limits.costs import TokenCost
from relay_core.providers.base import Provider, RateLimitFeedback
from relay_core.schemas.chat import ChatCompletionRequest, Usage
from relay_core.settings import Settings
from relay_core.tokens import cost_sample, estimate_request_tokens

log = logging.getLogger("relay.dispatch")

DEFAULT_PAUSE_S = 1.0
# How long a worker trusts a closed breaker without asking Redis again.
CLOSED_CACHE_S = 0.25


@dataclass(frozen=True, slots=True)
class LiveTarget:
    provider: Provider
    model: ModelConfig

    @property
    def config(self) -> ProviderConfig:
        return self.provider.config

    @property
    def name(self) -> str:
        return self.provider.config.name


class WorkerState:
    def __init__(
        self,
        settings: Settings,
        providers: Mapping[str, Provider],
        limiter: Limiter,
        breaker: Breaker,
        fingerprints: Mapping[str, str],
    ) -> None:
        self.settings = settings
        self.providers = providers
        self.limiter = limiter
        self.breaker = breaker
        self.fingerprints = fingerprints
        self._closed_until: dict[tuple[str, str], float] = {}
        self._served = [(p.config.name, m.id) for p in providers.values() for m in p.config.models]

    def target(self, cand: Candidate) -> LiveTarget | None:
        provider = self.providers.get(cand.provider)
        if provider is None:
            return None
        model = provider.config.model(cand.model)
        return None if model is None else LiveTarget(provider, model)

    def cost(self, t: LiveTarget) -> TokenCost:
        """What calls to ``t`` were learned to cost (``relay_core.limits.costs``)."""
        return self.limiter.costs.get(t.name, t.model.id)

    def estimate(self, t: LiveTarget, request: ChatCompletionRequest, prompt: int) -> int:
        """The tokens to reserve for ``request`` (``prompt`` by Relay's count) on ``t``: the
        TPM buckets take prompts as the provider counts them, so a denser tokenizer does not
        over-admit a token-bound provider, and outputs as it charges them."""
        return estimate_request_tokens(
            prompt, request, t.model, provider=t.config, cost=self.cost(t)
        )

    def learn_cost(
        self, t: LiveTarget, request: ChatCompletionRequest, prompt: int, usage: Usage
    ) -> None:
        """Learn from the usage an upstream reported (never from Relay's own estimate)."""
        used = (usage.prompt_tokens, usage.completion_tokens)
        sample = cost_sample(t.config, t.model, request, prompt, used)
        self.limiter.costs.observe(t.name, t.model.id, sample)

    async def refresh_learned(self, now: float) -> None:
        """Take up the rates other workers learned from 429s, and share and take up the
        token costs (each at most once a second)."""
        if self.limiter.learned is not None:
            await self.limiter.learned.refresh(list(self.providers), now)
        await self.limiter.costs.sync(self._served, now)

    def plan(self, t: LiveTarget, now: float) -> LimitPlan:
        return self.limiter.plan(t.config, t.model, now)

    async def permit(self, t: LiveTarget, now: float) -> Permit | UpstreamError:
        """The breakers' permission for a call to ``t``, or why they keep traffic off: the
        provider refused its key (:class:`UpstreamAuthError`), or a breaker is open
        (:class:`CircuitOpen`, ``retry_after`` the rest of its real cool-down).

        Fast path: while both breakers were seen closed less than ``CLOSED_CACHE_S`` ago and
        the key is not disabled, the permission is given locally (a closed breaker has no
        probe to hand out); outcomes are still recorded in Redis for every call.
        """
        keys = self.breaker.keys(t.name, t.model.id)
        if self._closed_until.get(keys, 0.0) > now:
            return Permit(allowed=True, state=BreakerState.closed, keys=keys)
        if await self.breaker.is_disabled(t.name, self.fingerprints.get(t.name, "")):
            return UpstreamAuthError(
                f"{t.name} refused Relay's API key for it; the key is set aside until it is "
                "changed (see `relay status`).",
                provider=t.name,
                model=t.model.id,
            )
        permit = await self.breaker.allow_all(keys, now)
        if not permit.allowed:
            wait = max(permit.retry_in_s, 1.0)
            return CircuitOpen(
                f"{t.name} is failing; Relay keeps traffic off it for {wait:.0f} s more.",
                provider=t.name,
                model=t.model.id,
                retry_after=wait,
            )
        if permit.state is BreakerState.closed and not permit.probe_keys:
            self._closed_until[keys] = now + CLOSED_CACHE_S
        return permit

    def forget_closed(self, t: LiveTarget) -> None:
        """A call failed: ask Redis again next time."""
        self._closed_until.pop(self.breaker.keys(t.name, t.model.id), None)

    async def refund(self, t: LiveTarget, lease: str, estimate: int, now: float) -> None:
        """Give back the lease and tokens of a call that did not go out."""
        await self.limiter.release(self.plan(t, now), lease, 0, estimate, now)

    async def soonest(
        self, cands: Sequence[Candidate], now: float, cost_tokens: int = 1
    ) -> tuple[int, float] | None:
        """Among ``cands`` this process serves, the offset of the one with capacity soonest
        for a request of ``cost_tokens`` (peek with the real cost: a budget that still holds
        one token may not hold the request)."""
        offsets: list[int] = []
        plans: list[LimitPlan] = []
        for i, c in enumerate(cands):
            t = self.target(c)
            if t is not None:
                offsets.append(i)
                plans.append(self.plan(t, now))
        if not plans:
            return None
        caps = await self.limiter.peek_many(plans, now, cost_tokens)
        best = min(range(len(caps)), key=lambda k: caps[k].wait_s)
        return offsets[best], caps[best].wait_s

    async def after_success(
        self,
        t: LiveTarget,
        *,
        permit: Permit,
        lease: str,
        tokens: tuple[int, int],
        feedback: RateLimitFeedback,
        now: float,
    ) -> None:
        """Release the lease, correct the token estimate, learn from the headers, close."""
        estimate, actual = tokens
        plan = self.plan(t, now)
        await self.limiter.release(plan, lease, actual, estimate, now)
        if not feedback.is_empty():
            await self.limiter.apply_feedback(plan, feedback, now)
        await self.breaker.record_permit(permit, True, now)

    async def after_failure(
        self,
        t: LiveTarget,
        *,
        permit: Permit,
        lease: str,
        estimate: int,
        exc: UpstreamError,
        now: float,
    ) -> None:
        self.forget_closed(t)
        plan = self.plan(t, now)
        # A failed call used a request slot but (most likely) no completion tokens.
        await self.limiter.release(plan, lease, 0, estimate, now)
        if isinstance(exc, RateLimited):
            pause = exc.retry_after if exc.retry_after is not None else DEFAULT_PAUSE_S
            await self.limiter.pause(t.name, now + pause, now)
            if self.limiter.learned is not None and (t.config.limits.rpm or t.config.limits.tpm):
                # Our buckets let this call through: the provider enforces less than it says.
                factor = await self.limiter.learned.rate_limited(t.name, now)
                log.info(
                    "%s: 429 under its published limit; pacing at %.0f %%", t.name, 100 * factor
                )
            # A 429 is the provider's pacing, not sickness: release a probe slot as a success.
            await self.breaker.record_permit(permit, True, now)
            return
        if isinstance(exc, UpstreamAuthError):
            log.warning("%s: the provider refused the API key; disabled until it changes", t.name)
            await self.breaker.disable(t.name, self.fingerprints.get(t.name, ""), "auth", now)
            return
        # A request the provider refused is the request's fault, not the provider's.
        await self.breaker.record_permit(permit, isinstance(exc, UpstreamBadRequest), now)
