"""Per-event metrics: the executor's sink, the live-gauge collector and the exposition text."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from relay_core.batch.models import BatchProgress, BatchStatus, RequestCounts
from relay_core.errors import RateLimited, UpstreamTimeout
from relay_core.events import CallRecord
from relay_core.metrics import (
    FarmSnapshot,
    LimitLevel,
    MetricsSink,
    ProviderLive,
    RelayMetrics,
    SnapshotCollector,
    scrape,
)
from relay_core.metrics.load import InFlight


@pytest.fixture(autouse=True)
def _single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)


def call(**over: object) -> CallRecord:
    fields: dict[str, object] = {
        "provider": "groq",
        "model": "llama",
        "owner": None,
        "kind": "interactive",
        "ok": True,
        "error": None,
        "latency_s": 0.2,
        "queue_wait_s": 0.01,
        "prompt_tokens": 12,
        "completion_tokens": 30,
    }
    fields.update(over)
    return CallRecord(**fields)  # type: ignore[arg-type]


async def test_sink_counts_calls_tokens_latency_and_429s() -> None:
    registry = CollectorRegistry()
    sink = MetricsSink(RelayMetrics.create(registry))
    await sink.call_finished(call())
    await sink.call_finished(
        call(ok=False, error=RateLimited, prompt_tokens=0, completion_tokens=0)
    )
    await sink.call_finished(call(ok=False, error=UpstreamTimeout, latency_s=30.0, ttft_s=None))
    await sink.call_finished(call(ttft_s=0.05, kind="batch"))

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    base = {"provider": "groq", "model": "llama"}
    assert value("relay_upstream_calls_total", **base, kind="interactive", outcome="ok") == 1
    assert value("relay_upstream_calls_total", **base, kind="batch", outcome="ok") == 1
    assert (
        value("relay_upstream_calls_total", **base, kind="interactive", outcome="RateLimited") == 1
    )
    assert value("relay_upstream_rate_limited_total", provider="groq") == 1
    assert value("relay_tokens_total", **base, type="prompt") == 12 * 3
    assert value("relay_tokens_total", **base, type="completion") == 30 * 3
    assert value("relay_upstream_latency_seconds_count", **base) == 4
    assert value("relay_upstream_latency_seconds_bucket", **base, le="0.25") == 3
    assert value("relay_upstream_ttft_seconds_count", **base) == 1
    assert value("relay_queue_wait_seconds_count", provider="groq", kind="interactive") == 3


def test_two_metric_sets_on_two_registries_do_not_collide() -> None:
    one, two = CollectorRegistry(), CollectorRegistry()
    MetricsSink(RelayMetrics.create(one)).record(call())
    MetricsSink(RelayMetrics.create(two))
    labels = {"provider": "groq", "model": "llama", "kind": "interactive", "outcome": "ok"}
    assert one.get_sample_value("relay_upstream_calls_total", labels) == 1
    assert two.get_sample_value("relay_upstream_calls_total", labels) is None


def snapshot() -> FarmSnapshot:
    groq = ProviderLive(
        name="groq",
        queue_depth=7,
        in_flight=3,
        breaker="open",
        model_breakers={"llama": "half_open"},
        levels=(
            LimitLevel("groq", "rpm", 0.5, 1.0),
            LimitLevel("groq/llama", "rpd", 990.0, 1000.0),
        ),
    )
    local = ProviderLive(name="ollama", queue_depth=0, in_flight=0, breaker="disabled")
    running = BatchProgress(
        id="batch_1",
        status=BatchStatus.in_progress,
        request_counts=RequestCounts(total=100, completed=40, failed=2),
        dispatched=50,
        created_at=1,
    )
    ending = BatchProgress(
        id="batch_2",
        status=BatchStatus.finalizing,
        request_counts=RequestCounts(total=10, completed=10),
        dispatched=10,
        created_at=2,
    )
    return FarmSnapshot(providers=[groq, local], workers=[], at=0.0, batches=[running, ending])


def test_live_gauges_describe_the_snapshot() -> None:
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(snapshot()))

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("relay_queue_depth", provider="groq") == 7
    assert value("relay_in_flight", provider="groq") == 3
    assert value("relay_breaker_state", provider="groq", model="") == 2
    assert value("relay_breaker_state", provider="groq", model="llama") == 1
    assert value("relay_breaker_state", provider="ollama", model="") == 3
    assert value("relay_limit_available", provider="groq", scope="groq", limit="rpm") == 0.5
    assert value("relay_limit_capacity", provider="groq", scope="groq/llama", limit="rpd") == 1000
    assert value("relay_workers") == 0
    assert value("relay_batches", status="in_progress") == 1
    assert value("relay_batches", status="finalizing") == 1
    assert value("relay_batch_lines", state="queued") == 50
    assert value("relay_batch_lines", state="in_progress") == 8
    assert value("relay_batch_lines", state="completed") == 50
    assert value("relay_batch_lines", state="failed") == 2


def test_scrape_joins_own_registry_and_live_gauges() -> None:
    own = CollectorRegistry()
    MetricsSink(RelayMetrics.create(own)).record(call())
    text = scrape(own, [SnapshotCollector(snapshot())]).decode()
    labels = 'kind="interactive",model="llama",outcome="ok",provider="groq"'
    assert f"relay_upstream_calls_total{{{labels}}} 1.0" in text
    assert 'relay_queue_depth{provider="groq"} 7.0' in text


def test_scrape_in_multiprocess_mode_reads_the_directory_not_the_own_registry(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    own = CollectorRegistry()
    MetricsSink(RelayMetrics.create(own)).record(call())
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    text = scrape(own, [SnapshotCollector(snapshot())]).decode()
    assert "relay_upstream_calls_total" not in text  # the (empty) directory, not own
    assert 'relay_queue_depth{provider="groq"} 7.0' in text


def test_in_flight_counts_per_provider_and_forgets_zeroes() -> None:
    load = InFlight()
    with load.track("groq"), load.track("groq"), load.track("gemini"):
        assert load.snapshot() == {"groq": 2, "gemini": 1}
        assert load.total == 3
    assert load.snapshot() == {}
    with pytest.raises(RuntimeError), load.track("groq"):
        raise RuntimeError
    assert load.snapshot() == {}


RECORD_ONE_CALL = """
from relay_core.events import CallRecord
from relay_core.metrics import MetricsSink, RelayMetrics
sink = MetricsSink(RelayMetrics.create(None))
sink.record(CallRecord("groq", "llama", None, "interactive", True, None, 0.2, 0.01, 5, 7))
"""


def test_multiprocess_scrape_adds_up_every_process_on_the_machine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):  # two "workers", each its own process
        subprocess.run([sys.executable, "-c", RECORD_ONE_CALL], env=env, check=True)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    text = scrape(None).decode()
    labels = 'kind="interactive",model="llama",outcome="ok",provider="groq"'
    assert f"relay_upstream_calls_total{{{labels}}} 2.0" in text
    assert 'relay_tokens_total{model="llama",provider="groq",type="completion"} 14.0' in text
