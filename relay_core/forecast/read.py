"""The forecasts ``GET /v1/usage`` and ``relay status`` show: every provider's and model's
limits, and a key's quota, each with its time to exhaustion at the recent pace."""

from __future__ import annotations

from collections.abc import Sequence

from relay_core.catalogue.models import ProviderConfig
from relay_core.forecast.horizon import Horizon, horizons, scopes_of
from relay_core.forecast.spend import SpendStore
from relay_core.limits import Limiter, LimitPlan
from relay_core.limits.quota import KeyQuotas
from relay_core.routing.targets import all_targets


async def _horizons(
    limiter: Limiter, store: SpendStore, plans: Sequence[LimitPlan], now: float
) -> list[Horizon]:
    if not plans:
        return []
    caps = await limiter.peek_many(plans, now)
    spends = await store.read(scopes_of(plans), now)
    return horizons(plans, caps, spends, now)


async def provider_horizons(
    limiter: Limiter, store: SpendStore, providers: Sequence[ProviderConfig], now: float
) -> list[Horizon]:
    """Each published limit of ``providers`` (a provider's once, then its models')."""
    plans = [limiter.plan(t.provider, t.model, now) for t in all_targets(providers)]
    return await _horizons(limiter, store, plans, now)


async def key_horizons(
    quotas: KeyQuotas, store: SpendStore, owners: Sequence[str], now: float
) -> list[Horizon]:
    """Each quota of the keys ``owners`` (none for a key without a quota)."""
    plans = [p for p in (quotas.plan(o, now) for o in owners) if p is not None]
    return await _horizons(quotas.limiter, store, plans, now)
