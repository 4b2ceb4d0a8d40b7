"""``relay status`` rendering: one screen from a snapshot."""

from __future__ import annotations

import json

from rich.console import Console

from relay_cli.status import FarmStatus, ProviderRow, as_json, render
from relay_core.batch.models import BatchProgress, BatchStatus, ProviderProgress, RequestCounts
from relay_core.heartbeat import WorkerBeat
from relay_core.metrics import FarmSnapshot, LimitLevel, ProviderLive


def batch() -> BatchProgress:
    return BatchProgress(
        id="batch_abc",
        status=BatchStatus.in_progress,
        request_counts=RequestCounts(total=100, completed=40, failed=2),
        dispatched=50,
        in_flight=8,
        providers={
            "groq": ProviderProgress(completed=30, failed=2),
            "gemini": ProviderProgress(completed=10),
        },
        created_at=1,
    )


def status(workers: bool = True, batches: bool = True) -> FarmStatus:
    groq = ProviderLive(
        name="groq",
        queue_depth=12,
        in_flight=4,
        breaker="open",
        model_breakers={"llama-70b": "half_open"},
        levels=(
            LimitLevel("groq", "rpm", 0.4, 1.0),
            LimitLevel("groq/llama-70b", "rpd", 990, 1000),
        ),
    )
    beat = WorkerBeat(name="host.42", pid=42, providers=["groq"], in_flight=4, at=98.0)
    snap = FarmSnapshot(
        providers=[groq],
        workers=[beat] if workers else [],
        at=100.0,
        batches=[batch()] if batches else [],
    )
    rows = [
        ProviderRow("groq", True, "yes", live=groq),
        ProviderRow("gemini", False, "no", reason="GEMINI_API_KEY is not set"),
    ]
    return FarmStatus("redis://127.0.0.1:6379/0", rows, snap)


def text_of(s: FarmStatus) -> str:
    console = Console(record=True, width=200)
    render(s, console)
    return console.export_text()


def test_one_screen_shows_providers_limits_breakers_queues_and_workers() -> None:
    text = text_of(status())
    for expected in (
        "groq",
        "open",
        "llama-70b: half-open",
        "rpm 0.4/1",
        "llama-70b rpd 990/1000",
        "12",
        "GEMINI_API_KEY is not set",
        "host.42",
        "2 s ago",
        "batch_abc",
        "in_progress",
        "42/100 (42%)",
        "gemini 10, groq 30/2 failed",
    ):
        assert expected in text, expected
    assert "Batches: none running" in text_of(status(batches=False))


def test_no_worker_is_said_plainly() -> None:
    assert "No live workers" in text_of(status(workers=False))


def test_json_output_is_complete() -> None:
    data = json.loads(as_json(status()))
    groq, gemini = data["providers"]
    assert groq["live"]["queue_depth"] == 12 and groq["live"]["breaker"] == "open"
    assert gemini["enabled"] is False and gemini["reason"] == "GEMINI_API_KEY is not set"
    assert data["snapshot"]["workers"][0]["name"] == "host.42"
    assert data["snapshot"]["batches"][0]["request_counts"]["completed"] == 40
