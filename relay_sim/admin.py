"""The simulator's admin API, under ``/_sim``.

==================================  ==========================================================
``GET  /_sim/health``               ``{"status": "ok", "providers": [...]}``
``GET  /_sim/stats``                counters per provider and per model (each with its run's
                                    binding ceiling, :mod:`relay_sim.ceiling`), and totals
``GET  /_sim/providers/{name}``     a provider's configuration (the key masked)
``POST /_sim/providers/{name}``     change its behaviour: a JSON object of
                                    :class:`~relay_sim.config.SimProvider` fields
                                    (``outage``, ``hang``, ``rpm``, ``latency_ms``, ...)
``POST /_sim/reset``                zero the counters and empty the limit windows
==================================  ==========================================================
"""

from __future__ import annotations

import orjson
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relay_sim.config import SimProvider
from relay_sim.state import SimState

JSON = "application/json"


def _json(payload: object, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status, media_type=JSON)


def _error(message: str, status: int) -> Response:
    return _json({"error": {"message": message}}, status)


def _shown(config: SimProvider) -> object:
    return config.model_dump(mode="json")


def admin_routes(state: SimState) -> list[Route]:
    async def health(request: Request) -> Response:
        return _json({"status": "ok", "providers": sorted(state.providers)})

    async def stats(request: Request) -> Response:
        return _json(state.stats())

    async def show(request: Request) -> Response:
        provider = state.providers.get(request.path_params["name"])
        if provider is None:
            return _error(f"no simulated provider {request.path_params['name']!r}", 404)
        return _json(_shown(provider.config))

    async def patch(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in state.providers:
            return _error(f"no simulated provider {name!r}", 404)
        try:
            changes = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _error("the body must be a JSON object", 400)
        if not isinstance(changes, dict):
            return _error("the body must be a JSON object", 400)
        try:
            config = state.patch(name, changes)
        except ValidationError as exc:
            details = orjson.loads(exc.json(include_url=False))
            return _json({"error": {"message": "invalid patch", "details": details}}, 400)
        return _json(_shown(config))

    async def reset(request: Request) -> Response:
        state.reset()
        return _json({"status": "reset"})

    return [
        Route("/_sim/health", health, methods=["GET"]),
        Route("/_sim/stats", stats, methods=["GET"]),
        Route("/_sim/providers/{name}", show, methods=["GET"]),
        Route("/_sim/providers/{name}", patch, methods=["POST"]),
        Route("/_sim/reset", reset, methods=["POST"]),
    ]
