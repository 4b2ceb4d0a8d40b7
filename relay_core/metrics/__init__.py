"""Prometheus metrics: per-event counters and histograms, and live gauges read from Redis.

Per event (recorded where it happens; multiprocess-safe through ``PROMETHEUS_MULTIPROC_DIR``):

=====================================  ======================================================
``relay_upstream_calls_total``         upstream calls {provider, model, kind, outcome}
``relay_upstream_rate_limited_total``  upstream 429s {provider}
``relay_tokens_total``                 tokens {provider, model, type=prompt|completion}
``relay_queue_wait_seconds``           enqueue to call start {provider, kind}
``relay_upstream_latency_seconds``     upstream call duration {provider, model}
``relay_upstream_ttft_seconds``        streaming upstream time to first chunk {provider, model}
``relay_requests_total``               API requests {endpoint, provider, model, status}
``relay_request_duration_seconds``     API request duration {endpoint, provider}
``relay_request_ttft_seconds``         streaming API time to first byte {endpoint, provider}
=====================================  ======================================================

Live, at scrape time (:mod:`relay_core.metrics.live`): ``relay_queue_depth``,
``relay_in_flight``, ``relay_breaker_state``, ``relay_limit_available``,
``relay_limit_capacity``, ``relay_workers``; one collection serves every scrape for a moment
(:mod:`relay_core.metrics.cache`). See docs/operations.md.
"""

from __future__ import annotations

from relay_core.metrics.cache import ScrapeCache
from relay_core.metrics.collector import SnapshotCollector, multiprocess_dir, scrape
from relay_core.metrics.families import RelayMetrics
from relay_core.metrics.live import FarmSnapshot, LimitLevel, ProviderLive, read_snapshot
from relay_core.metrics.load import InFlight, publish_load, read_load
from relay_core.metrics.sink import MetricsSink

__all__ = [
    "FarmSnapshot",
    "InFlight",
    "LimitLevel",
    "MetricsSink",
    "ProviderLive",
    "RelayMetrics",
    "ScrapeCache",
    "SnapshotCollector",
    "multiprocess_dir",
    "publish_load",
    "read_load",
    "read_snapshot",
    "scrape",
]
