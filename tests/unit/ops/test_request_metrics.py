"""The API's request-metrics middleware, around plain and streaming responses."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse, StreamingResponse
from prometheus_client import CollectorRegistry

from relay_api.routes.metrics import RequestMetrics
from relay_core.metrics import RelayMetrics


def build() -> tuple[FastAPI, CollectorRegistry]:
    app = FastAPI()
    registry = CollectorRegistry()
    app.add_middleware(RequestMetrics, metrics=RelayMetrics.create(registry))

    @app.post("/v1/chat/completions")
    async def chat(stream: bool = False, fail: bool = False) -> object:
        if fail:
            return JSONResponse({"error": {"message": "busy"}}, status_code=429)
        headers = {"x-relay-provider": "groq", "x-relay-model": "llama"}
        if not stream:
            return JSONResponse({"ok": True}, headers=headers)

        async def chunks() -> AsyncIterator[bytes]:
            yield b"data: {}\n\n"
            yield b"data: [DONE]\n\n"

        return StreamingResponse(chunks(), media_type="text/event-stream", headers=headers)

    @app.get("/v1/models")
    async def models() -> dict[str, str]:
        return {"object": "list"}

    return app, registry


@pytest.fixture
def app_and_registry() -> tuple[FastAPI, CollectorRegistry]:
    return build()


async def test_counts_by_serving_provider_model_and_status(
    app_and_registry: tuple[FastAPI, CollectorRegistry],
) -> None:
    app, registry = app_and_registry
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        assert (await c.post("/v1/chat/completions")).status_code == 200
        assert (await c.post("/v1/chat/completions", params={"stream": True})).status_code == 200
        assert (await c.post("/v1/chat/completions", params={"fail": True})).status_code == 429
        assert (await c.get("/v1/models")).status_code == 200

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    ok = {"endpoint": "chat", "provider": "groq", "model": "llama", "status": "200"}
    assert value("relay_requests_total", **ok) == 2
    refused = {"endpoint": "chat", "provider": "none", "model": "none", "status": "429"}
    assert value("relay_requests_total", **refused) == 1
    assert value("relay_request_duration_seconds_count", endpoint="chat", provider="groq") == 2
    # Only the streamed answer has a time to first byte; /v1/models is not counted at all.
    assert value("relay_request_ttft_seconds_count", endpoint="chat", provider="groq") == 1
    total = sum(
        s.value
        for m in registry.collect()
        if m.name == "relay_requests"
        for s in m.samples
        if s.name == "relay_requests_total"
    )
    assert total == 3
