"""Live gauges from a :class:`FarmSnapshot`, and the text a ``/metrics`` scrape returns.

Gauges of the farm's condition are read from Redis at scrape time (the API does it once per
scrape) instead of being stored per process: they describe shared state, not a process.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence

from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from relay_core.metrics.batches import lines_by_state
from relay_core.metrics.live import DISABLED, FarmSnapshot

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Breaker states as numbers, so a dashboard can colour them and alert on > 0.
BREAKER_VALUES = {"closed": 0.0, "half_open": 1.0, "open": 2.0, DISABLED: 3.0}


class SnapshotCollector(Collector):
    """Yields the gauges of one snapshot (build one per scrape)."""

    def __init__(self, snapshot: FarmSnapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        snap = self.snapshot
        depth = GaugeMetricFamily(
            "relay_queue_depth", "Messages waiting in each provider queue.", labels=["provider"]
        )
        flight = GaugeMetricFamily(
            "relay_in_flight", "Calls workers are making, per provider.", labels=["provider"]
        )
        breaker = GaugeMetricFamily(
            "relay_breaker_state",
            "Circuit breakers: 0 closed, 1 half-open, 2 open, 3 key disabled.",
            labels=["provider", "model"],
        )
        available = GaugeMetricFamily(
            "relay_limit_available",
            "What is left of each limit (requests, tokens or slots).",
            labels=["provider", "scope", "limit"],
        )
        capacity = GaugeMetricFamily(
            "relay_limit_capacity",
            "The size of each limit (bucket capacity, daily limit, slots).",
            labels=["provider", "scope", "limit"],
        )
        for p in snap.providers:
            depth.add_metric([p.name], p.queue_depth)
            flight.add_metric([p.name], p.in_flight)
            breaker.add_metric([p.name, ""], BREAKER_VALUES.get(p.breaker, 2.0))
            for model, state in p.model_breakers.items():
                breaker.add_metric([p.name, model], BREAKER_VALUES.get(state, 2.0))
            for lv in p.levels:
                available.add_metric([p.name, lv.scope, lv.limit], lv.available)
                capacity.add_metric([p.name, lv.scope, lv.limit], lv.capacity)
        workers = GaugeMetricFamily("relay_workers", "Worker processes with a live heartbeat.")
        workers.add_metric([], len(snap.workers))
        yield from (depth, flight, breaker, available, capacity, workers, *_batches(snap))


def _batches(snap: FarmSnapshot) -> tuple[Metric, ...]:
    running = GaugeMetricFamily(
        "relay_batches", "Batches the workers look after, by status.", labels=["status"]
    )
    by_status: dict[str, int] = {}
    for b in snap.batches:
        by_status[b.status.value] = by_status.get(b.status.value, 0) + 1
    for status, count in sorted(by_status.items()):
        running.add_metric([status], count)
    lines = GaugeMetricFamily(
        "relay_batch_lines",
        "Lines of running batches: queued, in_progress, completed, failed.",
        labels=["state"],
    )
    for state, count in lines_by_state(snap.batches).items():
        lines.add_metric([state], count)
    failing = GaugeMetricFamily(
        "relay_batch_finalize_failing",
        "Batches whose output files could not be written (storage full, read-only, ...): "
        "their finalize is retried with back-off.",
    )
    failing.add_metric([], sum(1 for b in snap.batches if b.finalize_error))
    failures = GaugeMetricFamily(
        "relay_batch_finalize_failures",
        "Failed attempts to write output files, summed over the batches still failing.",
    )
    failures.add_metric([], sum(b.finalize_failures for b in snap.batches))
    return running, lines, failing, failures


def multiprocess_dir() -> str | None:
    """The directory of multiprocess metric files, when this process runs in that mode."""
    path = os.environ.get(MULTIPROC_ENV)
    return path if path and os.path.isdir(path) else None


def event_registry(own: CollectorRegistry | None) -> CollectorRegistry:
    """The per-event metrics to expose: every Relay process's on this machine in multiprocess
    mode (their files), else this process's ``own`` registry."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir() is not None:
        aggregate: Callable[[CollectorRegistry], object] = MultiProcessCollector  # untyped
        aggregate(registry)
    elif own is not None:
        registry.register(_Forward(own))
    return registry


def scrape(own: CollectorRegistry | None, extra: Sequence[Collector] = ()) -> bytes:
    """The exposition text: :func:`event_registry` followed by ``extra`` collectors."""
    registry = event_registry(own)
    for collector in extra:
        registry.register(collector)
    return generate_latest(registry)


class _Forward(Collector):
    """Another registry's metrics, as one collector."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Metric]:
        return self.registry.collect()


def serve_metrics(port: int, own: CollectorRegistry, addr: str) -> Callable[[], None]:
    """Serve :func:`event_registry` on ``addr``:``port`` in a background thread, for
    Prometheus to scrape a worker on a machine without the API (``relay worker`` binds
    loopback unless told otherwise: docs/security.md). Returns the function that stops it."""
    server, thread = start_http_server(port, addr, event_registry(own))

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return stop
