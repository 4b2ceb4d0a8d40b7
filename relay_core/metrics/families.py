"""The metrics Relay records per event, built once per process on a registry of its choosing.

Counters and histograms only: in multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``) their values
live in per-process files that any process on the machine aggregates at scrape time. Live
levels (queues, buckets, breakers) are gauges read from Redis when scraped: see
:mod:`relay_core.metrics.live`.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

# Seconds: from a local simulator's few ms up to the slowest upstream's two minutes.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
QUEUE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)


@dataclass(frozen=True, slots=True)
class RelayMetrics:
    """Every per-event metric; ``create`` makes them (``registry=None``: unregistered, which is
    what multiprocess mode wants, since scrapes read the files instead)."""

    # Worker side: one observation per upstream call.
    upstream_calls: Counter  # {provider, model, kind, outcome}: outcome "ok" or the error class
    rate_limited: Counter  # {provider}: 429s from upstream
    tokens: Counter  # {provider, model, type}: type "prompt" | "completion"
    queue_wait: Histogram  # {provider, kind}: enqueue to the call starting
    upstream_latency: Histogram  # {provider, model}: the upstream call, whole answer
    upstream_ttft: Histogram  # {provider, model}: streaming calls, to the first chunk
    # API side: one observation per client request.
    requests: Counter  # {endpoint, provider, model, status}
    request_latency: Histogram  # {endpoint, provider}: request in to last byte out
    request_ttft: Histogram  # {endpoint, provider}: streaming responses, to the first byte

    @classmethod
    def create(cls, registry: CollectorRegistry | None) -> RelayMetrics:
        def counter(name: str, doc: str, labels: list[str]) -> Counter:
            return Counter(name, doc, labels, registry=registry)

        def histogram(
            name: str, doc: str, labels: list[str], buckets: tuple[float, ...]
        ) -> Histogram:
            return Histogram(name, doc, labels, registry=registry, buckets=buckets)

        return cls(
            upstream_calls=counter(
                "relay_upstream_calls",
                "Upstream calls by provider, model, kind and outcome (ok or the error class).",
                ["provider", "model", "kind", "outcome"],
            ),
            rate_limited=counter(
                "relay_upstream_rate_limited", "Upstream 429 answers by provider.", ["provider"]
            ),
            tokens=counter(
                "relay_tokens", "Tokens by provider, model and type.", ["provider", "model", "type"]
            ),
            queue_wait=histogram(
                "relay_queue_wait_seconds",
                "Time from enqueue to the upstream call starting.",
                ["provider", "kind"],
                QUEUE_BUCKETS,
            ),
            upstream_latency=histogram(
                "relay_upstream_latency_seconds",
                "Duration of upstream calls.",
                ["provider", "model"],
                LATENCY_BUCKETS,
            ),
            upstream_ttft=histogram(
                "relay_upstream_ttft_seconds",
                "Streaming upstream calls: time to the first chunk.",
                ["provider", "model"],
                LATENCY_BUCKETS,
            ),
            requests=counter(
                "relay_requests",
                "API requests by endpoint, serving provider and model, and HTTP status.",
                ["endpoint", "provider", "model", "status"],
            ),
            request_latency=histogram(
                "relay_request_duration_seconds",
                "API requests: first byte in to last byte out.",
                ["endpoint", "provider"],
                LATENCY_BUCKETS,
            ),
            request_ttft=histogram(
                "relay_request_ttft_seconds",
                "Streaming API responses: time to the first byte of the body.",
                ["endpoint", "provider"],
                LATENCY_BUCKETS,
            ),
        )
