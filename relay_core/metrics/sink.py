"""The executor's metrics sink: one :class:`CallRecord` in, a few counters and histograms out."""

from __future__ import annotations

from relay_core.errors import RateLimited
from relay_core.events import CallRecord
from relay_core.metrics.families import RelayMetrics

OK = "ok"


class MetricsSink:
    """An :class:`~relay_core.events.EventSink` recording every upstream call."""

    def __init__(self, metrics: RelayMetrics) -> None:
        self.metrics = metrics

    async def call_finished(self, record: CallRecord) -> None:
        self.record(record)

    def record(self, r: CallRecord) -> None:
        m = self.metrics
        outcome = OK if r.ok else (r.error.__name__ if r.error else "error")
        m.upstream_calls.labels(r.provider, r.model, r.kind, outcome).inc()
        if r.error is not None and issubclass(r.error, RateLimited):
            m.rate_limited.labels(r.provider).inc()
        m.queue_wait.labels(r.provider, r.kind).observe(r.queue_wait_s)
        m.upstream_latency.labels(r.provider, r.model).observe(r.latency_s)
        if r.ttft_s is not None:
            m.upstream_ttft.labels(r.provider, r.model).observe(r.ttft_s)
        if r.prompt_tokens:
            m.tokens.labels(r.provider, r.model, "prompt").inc(r.prompt_tokens)
        if r.completion_tokens:
            m.tokens.labels(r.provider, r.model, "completion").inc(r.completion_tokens)
