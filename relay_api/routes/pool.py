"""``GET /v1/relay/pool``: every provider's breaker, limits left (with reset times), queue depth,
calls in flight and last minutes of calls; live workers. What the console's pool page polls.

The pool is shared by every gateway key, so any valid key may read it; batches (which belong to
their owners) are not in it.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query

from relay_api.deps import OwnerDep, StateDep
from relay_core.metrics.pool import PoolView, read_pool
from relay_core.metrics.recent import KEEP_S, WINDOW_S

router = APIRouter()


@router.get("/v1/relay/pool")
async def pool(
    state: StateDep,
    _owner: OwnerDep,
    window_s: Annotated[int, Query(ge=30, le=KEEP_S)] = WINDOW_S,
) -> PoolView:
    return await read_pool(
        state.redis,
        state.settings.key_prefix,
        state.providers,
        state.limiter,
        state.breaker,
        now=time.time(),
        window_s=window_s,
    )
