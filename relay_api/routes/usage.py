"""``GET /v1/usage``: the caller's own usage per day, provider and model (from Redis counters).

Counted per upstream call by the workers (``relay_core.usage``): a request that failed over
counts once on each provider it tried, with its error. Only the caller's gateway key is ever
shown; with no gateway keys configured every caller is ``anonymous``.

``forecast`` adds the time to exhaustion of the caller's key quota and of every provider's
limits at the recent pace (relay_core/forecast, docs/routing.md "Budgets").
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query

from relay_api.deps import OwnerDep, StateDep
from relay_core.errors import InvalidRequest
from relay_core.forecast.read import key_horizons, provider_horizons
from relay_core.usage import COUNTERS, UsageRow, read_usage

router = APIRouter()


def _row(r: UsageRow) -> dict[str, Any]:
    return {
        "date": r.date,
        "provider": r.provider,
        "model": r.model,
        **{c: getattr(r, c) for c in COUNTERS},
        "total_tokens": r.total_tokens,
    }


def _day(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise InvalidRequest(
            f"Invalid date {value!r}: use YYYY-MM-DD (UTC).", param="date"
        ) from None


@router.get("/v1/usage")
async def usage(
    state: StateDep,
    owner: OwnerDep,
    date: Annotated[str | None, Query(description="one UTC day, YYYY-MM-DD")] = None,
    provider: str | None = None,
    model: str | None = None,
) -> dict[str, Any]:
    rows = await read_usage(
        state.redis,
        state.settings.key_prefix,
        owner,
        day=_day(date),
        provider=provider,
        model=model,
    )
    totals = {c: sum(getattr(r, c) for r in rows) for c in COUNTERS}
    totals["total_tokens"] = totals["prompt_tokens"] + totals["completion_tokens"]
    now = time.time()
    forecast = {
        "key": await key_horizons(state.quotas, state.spend, [owner], now),
        "providers": await provider_horizons(state.limiter, state.spend, state.providers, now),
    }
    return {
        "object": "list",
        "owner": owner,
        "data": [_row(r) for r in rows],
        "totals": totals,
        "forecast": {
            part: [h.model_dump(mode="json") for h in found] for part, found in forecast.items()
        },
    }
