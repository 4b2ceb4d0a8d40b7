"""OpenTelemetry traces: API -> queue -> worker -> each upstream attempt.

One tracer per process, built at start-up (:func:`make_tracer`) and passed down. Without
``RELAY_OTLP_ENDPOINT`` it is OpenTelemetry's no-op tracer: spans cost a few microseconds
and nothing is exported. With it, spans go to that OTLP/HTTP collector (Jaeger: ``docker
compose --profile observability``) in batches, off the request path.

The trace context crosses the queue in the Celery task's headers (W3C ``traceparent``,
:func:`trace_headers` when publishing, :func:`parent_of` in the worker), so the worker's
visit is a child of the API's request span, and each upstream attempt a child of the visit.
Attempt spans carry the GenAI semantic conventions' attributes (``gen_ai.*``).
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from relay_core.schemas.chat import ChatCompletionRequest, Usage
from relay_core.settings import Settings

_PROPAGATOR = TraceContextTextMapPropagator()
NO_TRACER: Tracer = trace.NoOpTracer()


def make_tracer(settings: Settings, service: str) -> Tracer:
    """The process's tracer: exporting to ``settings.otlp_endpoint``, else a no-op one."""
    if not settings.otlp_endpoint:
        return NO_TRACER
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    endpoint = f"{settings.otlp_endpoint.rstrip('/')}/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider.get_tracer("relay")


def trace_headers() -> dict[str, str]:
    """The current span's context as task headers (empty when nothing is traced)."""
    carrier: dict[str, str] = {}
    if trace.get_current_span().get_span_context().is_valid:
        _PROPAGATOR.inject(carrier)
    return carrier


def parent_of(headers: Mapping[str, object] | None) -> Context | None:
    """The context a task's headers carry (None: the visit starts a trace of its own)."""
    if not headers or not isinstance(headers.get("traceparent"), str):
        return None
    return _PROPAGATOR.extract({"traceparent": str(headers["traceparent"])})


def request_attributes(
    request: ChatCompletionRequest, system: str, model: str
) -> dict[str, str | int | float]:
    """GenAI attributes of one upstream attempt (never the prompt)."""
    found: dict[str, str | int | float] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": system,
        "gen_ai.request.model": model,
    }
    cap = request.output_limit()
    if cap is not None:
        found["gen_ai.request.max_tokens"] = cap
    if request.temperature is not None:
        found["gen_ai.request.temperature"] = request.temperature
    return found


def record_usage(span: Span, model: str, usage: Usage | None) -> None:
    span.set_attribute("gen_ai.response.model", model)
    if usage is not None:
        span.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", usage.completion_tokens)
