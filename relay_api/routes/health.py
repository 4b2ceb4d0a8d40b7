"""``GET /health`` (the process is up; and whether Redis answers) and ``GET /ready`` (Redis
answers, a worker consumes).

``/health`` stays 200 while Redis is down: the process is alive and answers 503s that say so,
and restarting it would not bring Redis back. ``/ready`` is the one that fails then."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from relay_api.deps import StateDep
from relay_core.heartbeat import live_workers

router = APIRouter()
PING_TIMEOUT_S = 1.0


@router.get("/health")
async def health(state: StateDep) -> dict[str, str]:
    try:
        await asyncio.wait_for(state.redis.ping(), PING_TIMEOUT_S)
        redis = "ok"
    except Exception:  # any failure to answer: the process is up, Redis is not
        redis = "unreachable"
    return {"status": "ok", "redis": redis}


@router.get("/ready", response_model=None)
async def ready(state: StateDep) -> JSONResponse:
    checks: dict[str, object] = {}
    try:
        await state.redis.ping()
        checks["redis"] = "ok"
        workers = await live_workers(state.redis, state.settings.key_prefix)
    except Exception as exc:  # Redis down: not ready, and say why
        checks["redis"] = f"unreachable: {type(exc).__name__}"
        workers = []
    served = sorted({p for w in workers for p in w.providers})
    checks["workers"] = len(workers)
    checks["providers_served"] = served
    ok = checks["redis"] == "ok" and bool(workers)
    return JSONResponse(
        {"status": "ready" if ok else "not_ready", **checks}, status_code=200 if ok else 503
    )
