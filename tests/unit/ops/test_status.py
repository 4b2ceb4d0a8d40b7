"""``relay status`` rendering: one screen from a snapshot."""

from __future__ import annotations

import dataclasses
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
    beat = WorkerBeat(
        name="w0@host.42", host="host.42", pid=42, providers=["groq"], in_flight=4, at=98.0
    )
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


def text_of(s: FarmStatus, width: int = 200) -> str:
    console = Console(record=True, width=width)
    render(s, console)
    return console.export_text()


def rows_with(text: str, *cells: str) -> list[str]:
    """The lines of ``text`` holding every cell, in order, each cell whole."""
    found = []
    for line in text.splitlines():
        words = line.split()
        at = 0
        for cell in cells:
            parts = cell.split()
            while at < len(words) and words[at : at + len(parts)] != parts:
                at += 1
            if at >= len(words):
                break
            at += len(parts)
        else:
            found.append(line)
    return found


def test_one_screen_shows_providers_limits_breakers_queues_and_workers() -> None:
    text = text_of(status())
    assert rows_with(text, "groq", "open", "rpm 0.4/1", "12", "4")
    assert rows_with(text, "llama-70b", "half-open", "rpd 990/1000")  # the model's own row
    assert rows_with(text, "gemini: GEMINI_API_KEY is not set")
    assert rows_with(text, "host.42", "w0", "42", "groq", "4", "2 s ago")
    assert rows_with(text, "batch_abc", "in_progress", "42/100 (42%)", "2", "8")
    assert rows_with(text, "batch_abc: gemini 10, groq 30/2 failed")
    assert "Batches: none running" in text_of(status(batches=False))


def long_names() -> FarmStatus:
    """Real-sized names: a 30-character batch id, a long model id and disabled reason."""
    s = status()
    s.snapshot.batches[0] = batch().model_copy(update={"id": "batch_" + "5f0c1e2d3b4a" * 2})
    router = ProviderLive(
        name="openrouter",
        queue_depth=1234,
        in_flight=56,
        breaker="half_open",
        model_breakers={"meta-llama/llama-4-scout-17b-16e-instruct": "open"},
        levels=(
            LimitLevel("openrouter", "rpm", 20, 20),
            LimitLevel("openrouter/meta-llama/llama-4-scout-17b-16e-instruct", "tpd", 5e5, 5e5),
        ),
    )
    s.providers.append(ProviderRow("openrouter", True, "not needed", live=router))
    reason = "CLOUDFLARE_API_TOKEN is not set; CLOUDFLARE_ACCOUNT_ID (used in base_url) is not set"
    s.providers.append(ProviderRow("cloudflare", False, "no", reason=reason))
    return s


def test_every_column_stays_readable_at_80_columns() -> None:
    text = text_of(long_names(), width=80)
    assert "…" not in text  # no header, state or id cut short
    assert all(len(line.rstrip()) <= 80 for line in text.splitlines())
    header = ("provider", "breaker", "limits left", "queued", "in flight")
    assert rows_with(text, *header)
    assert rows_with(text, "openrouter", "half-open", "rpm 20/20", "1234", "56")
    assert rows_with(text, "batch", "status", "done", "failed", "in flight")
    assert rows_with(text, "batch_5f0c1e2d3b4a5f0c1e2d3b4a", "in_progress", "42/100 (42%)")
    flat = " ".join(text.split())
    assert "cloudflare: " + reason_of(long_names(), "cloudflare") in flat  # wrapped, not cut
    assert "meta-llama/llama-4-scout-17b-" in text and "tpd 500k/500k" in text


def reason_of(s: FarmStatus, name: str) -> str:
    return next(row.reason or "" for row in s.providers if row.name == name)


def test_the_first_line_says_where_the_farm_was_found() -> None:
    s = status()
    s.found_by = "the default RELAY_REDIS_URL: no running relay up found in /x/.relay/up.json"
    assert text_of(s).splitlines()[0] == f"Relay farm on {s.redis_url} ({s.found_by})"


def test_no_worker_is_said_plainly() -> None:
    assert "No live workers" in text_of(status(workers=False))


def test_json_output_is_complete() -> None:
    data = json.loads(as_json(status()))
    groq, gemini = data["providers"]
    assert groq["live"]["queue_depth"] == 12 and groq["live"]["breaker"] == "open"
    assert gemini["enabled"] is False and gemini["reason"] == "GEMINI_API_KEY is not set"
    assert data["snapshot"]["workers"][0]["name"] == "w0@host.42"
    assert data["snapshot"]["workers"][0]["host"] == "host.42"
    assert data["snapshot"]["batches"][0]["request_counts"]["completed"] == 40


def test_workers_are_listed_by_host_with_the_queues_they_serve() -> None:
    s = status()
    beats = [
        ("w2@beta", "beta", ["groq", "gemini"]),
        ("w1@alpha", "alpha", ["groq"]),
        ("w3@beta", "beta", ["cerebras"]),
        ("old-worker", "", ["mistral"]),  # a beat from before hosts were sent
    ]
    workers = [
        WorkerBeat(name=name, host=host, pid=i, providers=queues, at=99.0)
        for i, (name, host, queues) in enumerate(beats, start=100)
    ]
    s.snapshot = dataclasses.replace(s.snapshot, workers=workers)
    text = text_of(s, width=80)
    rows = [line for line in text.splitlines() if " s ago" in line]
    assert len(rows) == 4
    assert rows_with(rows[0], "?", "old-worker", "103", "mistral")
    assert rows_with(rows[1], "alpha", "w1", "101", "groq")
    assert rows_with(rows[2], "beta", "w2", "100", "groq, gemini")
    assert rows_with(rows[3], "w3", "102", "cerebras") and "beta" not in rows[3]
    assert "@" not in " ".join(rows)  # the host is said once, in its own column


FIELDS = ("scope", "limit", "of", "left", "pace_per_min", "exhausted_in_s", "resets_in_s")


def test_budgets_show_what_is_being_spent_and_when_it_runs_out() -> None:
    from relay_core.forecast.horizon import Horizon
    from relay_core.limits.specs import Reason

    s = status()
    s.budgets = [
        Horizon.model_validate(dict(zip(FIELDS, row, strict=True)))
        for row in (
            ("groq", Reason.rpd, 1000, 400, 120, 200.0, 3600.0),
            ("key:k0123456789abcde", Reason.rpm, 60, 30, 30, None, None),
            ("gemini", Reason.rpm, 10, 10, 0, None, None),  # nothing spent: not listed
        )
    ]
    text = text_of(s)
    assert "Budgets (at the recent pace)" in text
    rows = [line.split() for line in text.splitlines() if line.startswith(("groq ", "key:"))]
    assert rows[-2:] == [
        ["groq", "rpd", "400/1000", "120.0", "3", "min"],  # soonest exhausted first
        ["key:k0123456789abcde", "rpm", "30/60", "30.0", "-"],
    ]
    assert "gemini  " not in text.split("Budgets")[1]  # nothing spent: not listed
    assert json.loads(as_json(s))["budgets"][0]["exhausted_in_s"] == 200.0
    assert "Budgets: nothing spent lately" in text_of(status())
