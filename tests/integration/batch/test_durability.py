"""Nothing is lost when every worker dies (SIGKILL) or the API changes mid-batch."""

from __future__ import annotations

import signal
from collections import Counter
from contextlib import ExitStack

import httpx
import pytest

from relay_api.app import create_app
from tests.integration.batch.conftest import (
    BatchFarm,
    chat_line,
    create,
    jsonl,
    read_lines,
    upload,
    wait_for,
)
from tests.integration.farm.conftest import four_providers
from tests.support.farm import worker_processes
from tests.support.servers import serve

pytestmark = pytest.mark.integration


def test_sigkilled_workers_lose_nothing_and_a_new_one_carries_on(batch_farm: BatchFarm) -> None:
    # Slow answers keep many lines in the workers' hands when they are killed.
    farm = batch_farm(
        lambda url: four_providers(url, rpm=3000),
        sim_overrides={"latency_ms": 150},
        workers=0,
        batch_line_timeout_s=2.0,
    )
    lines = [chat_line(f"k{i}", f"q{i}") for i in range(200)]
    with farm.client() as http, ExitStack() as stack:
        doomed = stack.enter_context(worker_processes(farm.settings, 2, 16))
        batch = create(http, upload(http, jsonl(lines)))
        wait_for(http, batch["id"], lambda b: b["request_counts"]["completed"] >= 30)
        for proc in doomed:
            proc.send_signal(signal.SIGKILL)
        for proc in doomed:
            proc.wait(10)
        stalled = http.get(f"/v1/batches/{batch['id']}").json()
        stack.enter_context(worker_processes(farm.settings, 1, 16))  # a fresh worker
        # Another API process serves the same batch: no batch state lives in the first one.
        other_api = stack.enter_context(serve(create_app(farm.settings)))
        with httpx.Client(base_url=other_api, timeout=30) as http2:
            final = wait_for(http2, batch["id"], timeout_s=40)
            out = read_lines(http2, final["output_file_id"])
    assert stalled["status"] == "in_progress"
    assert stalled["request_counts"]["completed"] < 200
    assert final["status"] == "completed", final
    assert final["request_counts"] == {"total": 200, "completed": 200, "failed": 0}
    assert Counter(o["custom_id"] for o in out) == Counter(f"k{i}" for i in range(200))
    for o in out:
        content = o["response"]["body"]["choices"][0]["message"]["content"]
        assert content.endswith(": q" + o["custom_id"][1:])
