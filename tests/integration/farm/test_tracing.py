"""OpenTelemetry spans end to end (issue 16, item 8): the API's request span, the worker's
visits as its children (the context crossed the queue in the task headers, and again when a
failed attempt was forwarded), and an attempt span per upstream call with GenAI attributes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tests.support.farm import make_settings, model, running_farm, sim_provider, simulated

pytestmark = pytest.mark.integration


def down_then_up(sim_url: str) -> list[dict[str, Any]]:
    """``down`` ranks first (listed first) and answers 503; ``up`` answers."""
    return [
        sim_provider(name, "openai", sim_url, [model(f"{name}-m", aliases=["chat"])])
        for name in ("down", "up")
    ]


def _one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    (found,) = [s for s in spans if s.name == name]
    return found


def test_a_request_is_one_trace_from_the_api_through_each_attempt(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with simulated(tmp_path, down_then_up) as (sim_url, path):
        httpx.post(f"{sim_url}/_sim/providers/down", json={"outage": True}).raise_for_status()
        settings = make_settings(path)
        with running_farm(settings, sim_url, tracer=provider.get_tracer("test")) as farm:
            body = {"model": "chat", "messages": [{"role": "user", "content": "Hello"}]}
            r = httpx.post(f"{farm.url}/v1/chat/completions", json=body, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["x-relay-provider"] == "up"
    spans = list(exporter.get_finished_spans())
    api = _one(spans, "chat chat")
    assert api.kind is SpanKind.SERVER
    assert api.attributes is not None and api.attributes["gen_ai.system"] == "up"
    assert {s.context.trace_id for s in spans} == {api.context.trace_id}  # one trace
    visits = [s for s in spans if s.name == "relay.visit"]
    assert len(visits) == 2  # the failed attempt was forwarded to another visit
    assert all(v.parent is not None and v.parent.span_id == api.context.span_id for v in visits)
    failed, answered = _one(spans, "chat down-m"), _one(spans, "chat up-m")
    assert failed.kind is answered.kind is SpanKind.CLIENT
    assert {failed.parent.span_id, answered.parent.span_id} == {  # type: ignore[union-attr]
        v.context.span_id for v in visits
    }
    assert failed.status.status_code is StatusCode.ERROR
    assert (
        failed.attributes is not None and failed.attributes["error.type"] == "UpstreamUnavailable"
    )
    attrs = answered.attributes
    assert attrs is not None
    assert (attrs["gen_ai.operation.name"], attrs["gen_ai.system"]) == ("chat", "up")
    assert (attrs["gen_ai.request.model"], attrs["gen_ai.response.model"]) == ("up-m", "up-m")
    for used in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"):
        tokens = attrs[used]
        assert isinstance(tokens, int) and tokens > 0
    # The prompt is never an attribute.
    assert not any("Hello" in str(v) for s in spans for v in (s.attributes or {}).values())
