"""Per gateway key quotas, on the same buckets and counters as the providers' limits.

A key's quota (``Settings.key_quota``) becomes a :class:`LimitPlan` of scope ``key:{owner}``:
an RPM and a TPM bucket that hold a whole minute's worth (a key may burst up to its
quota, unlike a provider's strictly paced buckets) and a daily token counter reset at
00:00 UTC. The API takes one request and the request's estimated tokens from it before
queueing (one round trip, none when no quota is set) and corrects the tokens by the answer's
usage afterwards. Keys (``{limits}`` is the limiter's prefix, ``{prefix}:limits``)::

    {limits}:key:{owner}:rpm | :tpm        token buckets
    {limits}:key:{owner}:tpd:{day}         daily tokens
"""

from __future__ import annotations

import math

from relay_core.errors import (
    KeyDailyTokensExceeded,
    KeyQuotaExceeded,
    KeyRpmExceeded,
    KeyTpmExceeded,
)
from relay_core.limits.daily import daily_window
from relay_core.limits.limiter import Limiter
from relay_core.limits.plan import DAY_S
from relay_core.limits.specs import BucketSpec, CounterSpec, LimitPlan, Reason
from relay_core.settings import KeyQuota, Settings

QUOTA_RESET = "00:00 UTC"
_REFUSED: dict[Reason | None, type[KeyQuotaExceeded]] = {
    Reason.rpm: KeyRpmExceeded,
    Reason.tpm: KeyTpmExceeded,
    Reason.tpd: KeyDailyTokensExceeded,
}
_WORDS = {
    Reason.rpm: "requests a minute",
    Reason.tpm: "tokens a minute",
    Reason.tpd: "tokens a day",
}


def key_scope(owner: str) -> str:
    return f"key:{owner}"


def quota_plan(prefix: str, owner: str, quota: KeyQuota, now: float) -> LimitPlan | None:
    """The buckets and counter of ``owner``'s quota (None when it has none)."""
    scope = key_scope(owner)
    buckets = []
    if quota.rpm is not None:
        key = f"{prefix}:{scope}:rpm"
        buckets.append(BucketSpec(key, quota.rpm / 60, float(quota.rpm), Reason.rpm, scope))
    if quota.tpm is not None:
        key = f"{prefix}:{scope}:tpm"
        buckets.append(BucketSpec(key, quota.tpm / 60, float(quota.tpm), Reason.tpm, scope))
    counters = []
    if quota.daily_tokens is not None:
        window = daily_window(QUOTA_RESET, now)
        key = f"{prefix}:{scope}:tpd:{window.id}"
        ttl = math.ceil(window.resets_at - now) + DAY_S
        counters.append(
            CounterSpec(key, quota.daily_tokens, ttl, window.resets_at, Reason.tpd, scope)
        )
    if not buckets and not counters:
        return None
    return LimitPlan(provider=scope, model="", buckets=tuple(buckets), counters=tuple(counters))


class KeyQuotas:
    """Takes each request from its key's quota, or refuses it with a 429 naming the quota."""

    def __init__(self, limiter: Limiter, settings: Settings) -> None:
        self.limiter = limiter
        self.settings = settings
        self.prefix = limiter.prefix
        self.enabled = bool(
            settings.key_rpm or settings.key_tpm or settings.key_daily_tokens or settings.key_quotas
        )

    def plan(self, owner: str, now: float) -> LimitPlan | None:
        if not self.enabled:
            return None
        return quota_plan(self.prefix, owner, self.settings.key_quota(owner), now)

    async def take(self, owner: str, tokens: int, request_id: str, now: float) -> LimitPlan | None:
        """Take one request and ``tokens`` from ``owner``'s quota; the plan taken from (to
        correct by the answer's usage), None when the key has no quota."""
        plan = self.plan(owner, now)
        if plan is None:
            return None
        decision = await self.limiter.acquire(plan, tokens, request_id, now)
        if not decision.granted:
            reason = decision.reason
            error = _REFUSED.get(reason, KeyQuotaExceeded)
            what = _WORDS.get(reason, "quota") if reason is not None else "quota"
            raise error(
                f"This API key is over its quota of {what}; other keys are not affected. "
                f"Retry after {max(1, math.ceil(decision.wait_s))} s.",
                retry_after=decision.wait_s,
            )
        return plan

    async def settle(
        self, plan: LimitPlan, request_id: str, actual: int, estimate: int, now: float
    ) -> None:
        """Correct the key's token quota by what the answer really used."""
        await self.limiter.release(plan, request_id, actual, estimate, now)
