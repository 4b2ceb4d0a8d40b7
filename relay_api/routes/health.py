"""``GET /health`` (the process is up) and ``GET /ready`` (Redis answers, a worker consumes)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from relay_api.deps import StateDep
from relay_core.heartbeat import live_workers

router = APIRouter()


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


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
