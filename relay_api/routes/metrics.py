"""``GET /metrics`` for Prometheus, and the middleware that counts API requests.

The per-event metrics of every Relay process on this machine (API and workers) are aggregated
in multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, which ``relay up`` sets); the live gauges
(queues, limits, breakers, workers) are read from Redis. One collection serves every scrape for
``RELAY_METRICS_CACHE_S`` (:class:`ScrapeCache`), and with ``RELAY_METRICS_TOKEN`` set a scrape
must send it as a bearer token.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Mapping

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relay_api.deps import StateDep
from relay_api.state import ApiState
from relay_core.answers.cache import read_stats
from relay_core.errors import AuthenticationError
from relay_core.metrics import (
    RelayMetrics,
    ScrapeCache,
    SnapshotCollector,
    read_snapshot,
    scrape,
)
from relay_core.metrics.answers import AnswerCacheCollector

router = APIRouter()

# The endpoints whose requests are counted, and their label.
ENDPOINTS: Mapping[str, str] = {
    "/v1/chat/completions": "chat",
    "/v1/embeddings": "embeddings",
}
NONE = "none"


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, state: StateDep) -> Response:
    check_metrics_token(request, state)
    own: CollectorRegistry | None = getattr(request.app.state, "metrics_registry", None)
    cache: ScrapeCache = request.app.state.metrics_cache

    async def collect() -> bytes:
        snap = await read_snapshot(
            state.redis,
            state.settings.key_prefix,
            state.providers,
            state.limiter,
            state.breaker,
            now=time.time(),
        )
        answers = AnswerCacheCollector(await read_stats(state.redis, state.settings.key_prefix))
        return await run_in_threadpool(scrape, own, [SnapshotCollector(snap), answers])

    body = await cache.get(state.settings.metrics_cache_s, collect)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def check_metrics_token(request: Request, state: ApiState) -> None:
    """With ``RELAY_METRICS_TOKEN`` set, a scrape must send ``Authorization: Bearer <it>``."""
    token = state.settings.metrics_token
    if token is None:
        return
    scheme, _, sent = request.headers.get("authorization", "").partition(" ")
    wanted = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(sent.strip().encode(), wanted):
        raise AuthenticationError(
            "GET /metrics needs 'Authorization: Bearer <token>' with RELAY_METRICS_TOKEN."
        )


class RequestMetrics:
    """Pure ASGI middleware: counts requests to :data:`ENDPOINTS` by the provider and model
    that served them (the ``x-relay-*`` response headers), with duration and, for streams,
    time to the first body byte. It never touches the bytes, so it is safe around SSE."""

    def __init__(self, app: ASGIApp, metrics: RelayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = ENDPOINTS.get(scope.get("path", "")) if scope["type"] == "http" else None
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        seen = _Seen(started=time.perf_counter())

        async def observe(message: Message) -> None:
            seen.message(message)
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            self._record(endpoint, seen)

    def _record(self, endpoint: str, seen: _Seen) -> None:
        m = self.metrics
        m.requests.labels(endpoint, seen.provider, seen.model, str(seen.status)).inc()
        m.request_latency.labels(endpoint, seen.provider).observe(seen.elapsed())
        if seen.streaming and seen.first_byte is not None:
            m.request_ttft.labels(endpoint, seen.provider).observe(seen.first_byte - seen.started)


class _Seen:
    """What the middleware learned from the response messages."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.status = 500  # nothing sent at all: the server failed
        self.provider = NONE
        self.model = NONE
        self.streaming = False
        self.first_byte: float | None = None
        self.ended: float | None = None

    def message(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            headers = {k.decode("latin-1").lower(): v for k, v in message.get("headers", [])}
            self.provider = headers.get("x-relay-provider", b"").decode() or NONE
            self.model = headers.get("x-relay-model", b"").decode() or NONE
            ctype = headers.get("content-type", b"").decode()
            self.streaming = ctype.startswith("text/event-stream")
        elif message["type"] == "http.response.body":
            if self.first_byte is None and message.get("body"):
                self.first_byte = time.perf_counter()
            if not message.get("more_body", False):
                self.ended = time.perf_counter()

    def elapsed(self) -> float:
        return (self.ended or time.perf_counter()) - self.started


def install_metrics(app: FastAPI) -> None:
    """Count this app's requests on its own registry, and serve ``GET /metrics``."""
    registry = CollectorRegistry()
    app.state.metrics_registry = registry
    app.state.metrics_cache = ScrapeCache()
    app.add_middleware(RequestMetrics, metrics=RelayMetrics.create(registry))
    app.include_router(router)
