"""What the request profile and tracing add to a request, in process (issue 16's targets).

    .venv/bin/python -m bench.overhead [--requests 5000]     # or: make bench BENCH_ONLY=overhead

* **Profile**: ``profile_request`` timed alone on a short request (one 160-character user
  message) and on a 32k-token one (a system prompt and a 128,000-character document, sized
  from its length as the profile does without the API's counts). Target: p99 <= 0.2 ms short,
  <= 1 ms at 32k.
* **Tracing, exporter off** (the default: OpenTelemetry's no-op tracer): the span work one
  request does on its way (the API's request span and its attributes, the trace headers put
  on the task and read back by the worker, the worker's visit span, one upstream attempt's
  span with its GenAI attributes and usage), timed per request; without tracing that work
  is not done at all, so its time is what tracing adds. Target: <= 0.3 ms added p50. For
  comparison the same with an SDK tracer recording every span in memory (an exporter on,
  without the network).

Each is timed as the thread's CPU time per call (the code's cost, which a loaded box does not
inflate) and as wall time (descheduling included: on a shared box its p99 is the load's).
Prints and returns a JSON-able dict (microseconds).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Tracer

from bench.harness import percentile
from relay_core.profile import profile_request
from relay_core.schemas.chat import ChatCompletionRequest, Usage
from relay_core.tracing import NO_TRACER, parent_of, record_usage, request_attributes, trace_headers

SHORT = ChatCompletionRequest.model_validate(
    {"model": "chat", "messages": [{"role": "user", "content": "route me " * 20}]}
)
DOCUMENT = "The quarterly report lists revenue, costs and the outlook for each region. " * 1700
LONG = ChatCompletionRequest.model_validate(
    {
        "model": "chat",
        "messages": [
            {"role": "system", "content": "You are a careful analyst."},
            {"role": "user", "content": f"Summarise this document:\n\n{DOCUMENT}"},
        ],
    }
)
USAGE = Usage(prompt_tokens=40, completion_tokens=12, total_tokens=52)


def timed(fn: Callable[[], object], n: int) -> dict[str, float]:
    """Per call: the thread's CPU time (what the code costs: a shared box that takes the CPU
    away mid-call does not count) and the wall time (what it took, descheduling included)."""
    for _ in range(min(200, n)):  # warm up
        fn()
    cpu, wall = [], []
    for _ in range(n):
        t, c = time.perf_counter_ns(), time.thread_time_ns()
        fn()
        cpu.append((time.thread_time_ns() - c) / 1e9)
        wall.append((time.perf_counter_ns() - t) / 1e9)
    return {
        "cpu_p50_us": round(percentile(cpu, 50) * 1e6, 2),
        "cpu_p99_us": round(percentile(cpu, 99) * 1e6, 2),
        "wall_p50_us": round(percentile(wall, 50) * 1e6, 2),
        "wall_p99_us": round(percentile(wall, 99) * 1e6, 2),
    }


def one_request(tracer: Tracer) -> Callable[[], None]:
    """The span work of one request that is answered at its first upstream attempt."""

    def run() -> None:
        attributes = {"gen_ai.operation.name": "chat", "gen_ai.request.model": SHORT.model}
        with tracer.start_as_current_span(
            f"chat {SHORT.model}", kind=SpanKind.SERVER, attributes=attributes
        ) as api:
            api.set_attribute("relay.request_id", "chatcmpl-0")
            headers = trace_headers()
            api.set_attribute("gen_ai.system", "alpha")
            api.set_attribute("gen_ai.response.model", "alpha-m")
        with tracer.start_as_current_span(
            "relay.visit",
            context=parent_of(headers),
            kind=SpanKind.CONSUMER,
            attributes={"relay.request_id": "chatcmpl-0", "relay.kind": "chat"},
        ):
            attempt = request_attributes(SHORT, "alpha", "alpha-m")
            with tracer.start_as_current_span(
                "chat alpha-m", kind=SpanKind.CLIENT, attributes=attempt
            ) as span:
                record_usage(span, "alpha-m", USAGE)

    return run


def recording_tracer() -> tuple[Tracer, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("bench"), exporter


def run(n: int = 5000) -> dict[str, Any]:
    tracer, exporter = recording_tracer()
    recorded = one_request(tracer)

    def recorded_and_cleared() -> None:
        recorded()
        exporter.clear()

    assert isinstance(NO_TRACER, trace.NoOpTracer)
    return {
        "requests": n,
        "profile_short": timed(lambda: profile_request(SHORT), n),
        "profile_32k": timed(lambda: profile_request(LONG), n),
        "long_prompt_tokens": profile_request(LONG).prompt_tokens,
        "tracing_off": timed(one_request(NO_TRACER), n),
        "tracing_recorded_in_memory": timed(recorded_and_cleared, n),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=5000)
    print(json.dumps(run(parser.parse_args().requests), indent=2))


if __name__ == "__main__":
    main()
