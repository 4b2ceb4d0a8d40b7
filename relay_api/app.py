"""The FastAPI application: ``create_app(settings)`` builds it; the lifespan builds the clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from opentelemetry.trace import Tracer

from relay_api.errors import install_error_handlers
from relay_api.middleware import install_body_limits
from relay_api.routes import (
    batches,
    chat,
    console,
    embeddings,
    files,
    health,
    models,
    pool,
    prompts,
    requests,
    usage,
    workflows,
)
from relay_api.routes.docs import install_static
from relay_api.routes.metrics import install_metrics
from relay_api.state import ApiState
from relay_core.settings import Settings


def create_app(settings: Settings | None = None, tracer: Tracer | None = None) -> FastAPI:
    """``tracer``: where request spans go (default: the settings' OTLP endpoint, or none)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await ApiState.build(settings, tracer)
        app.state.relay = state
        try:
            yield
        finally:
            await state.close()

    # /docs and /redoc are served from local assets (routes/docs.py), not FastAPI's CDN pages
    app = FastAPI(title="Relay", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    install_error_handlers(app)
    install_body_limits(app, settings)  # inside the metrics: 413s are counted
    install_metrics(app)
    for module in (health, models, chat, embeddings, usage, pool, requests):
        app.include_router(module.router)
    for module in (files, batches, prompts):  # docs/batch.md
        app.include_router(module.router)
    app.include_router(workflows.router)  # docs/workflows.md
    install_static(app)
    app.include_router(console.router)  # docs/console.md
    return app
