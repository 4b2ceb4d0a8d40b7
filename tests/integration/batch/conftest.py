"""Fixtures for batch tests: a real farm (Redis, Celery workers, API, simulator) whose API and
workers share a storage folder, with short batch timings."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.farm.conftest import four_providers
from tests.support.farm import Farm, farm_factory

BatchFarm = Callable[..., Farm]
TERMINAL = {"completed", "failed", "expired", "cancelled"}

# Settings a batch test may change (worker processes get them too: see settings_env).
BATCH_DEFAULTS: dict[str, Any] = {
    "batch_min_window_s": 1.0,
    "batch_line_timeout_s": 30.0,
    "batch_tick_s": 0.05,
}


@pytest.fixture
def batch_farm(tmp_path: Path) -> Iterator[BatchFarm]:
    """``batch_farm(providers_fn=four_providers, sim_overrides=None, workers=1, processes=0,
    **settings)`` -> a running Farm whose workers look after batches."""
    defaults = {**BATCH_DEFAULTS, "storage_dir": tmp_path / "files"}
    with farm_factory(tmp_path, four_providers, **defaults) as make:
        yield make


def chat_line(custom_id: str, text: str, **body: Any) -> dict[str, Any]:
    """One batch line asking ``text`` (``model`` "chat" unless ``body`` says otherwise)."""
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "chat", "messages": [{"role": "user", "content": text}], **body},
    }


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def upload(http: httpx.Client, data: bytes, name: str = "batch.jsonl") -> str:
    r = http.post("/v1/files", files={"file": (name, data)}, data={"purpose": "batch"})
    assert r.status_code == 200, r.text
    file_id: str = r.json()["id"]
    return file_id


def create(http: httpx.Client, file_id: str, window: str = "24h", **extra: Any) -> dict[str, Any]:
    r = http.post(
        "/v1/batches",
        json={
            "input_file_id": file_id,
            "endpoint": "/v1/chat/completions",
            "completion_window": window,
            **extra,
        },
    )
    assert r.status_code == 200, r.text
    batch: dict[str, Any] = r.json()
    return batch


def wait_for(
    http: httpx.Client,
    batch_id: str,
    done: Callable[[dict[str, Any]], bool] = lambda b: b["status"] in TERMINAL,
    timeout_s: float = 30.0,
) -> dict[str, Any]:
    """Poll the batch until ``done`` (a bounded wait on a condition, not a sleep)."""
    deadline = time.monotonic() + timeout_s
    while True:
        batch: dict[str, Any] = http.get(f"/v1/batches/{batch_id}").json()
        if done(batch):
            return batch
        assert time.monotonic() < deadline, f"batch did not get there in {timeout_s} s: {batch}"
        time.sleep(0.05)


def read_lines(http: httpx.Client, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    r = http.get(f"/v1/files/{file_id}/content")
    assert r.status_code == 200, r.text
    return [json.loads(line) for line in r.text.splitlines() if line.strip()]
