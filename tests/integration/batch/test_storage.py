"""Storage refuses a batch's output files: the batch says why (its ``errors``, ``relay status``,
``/metrics``), tries again with back-off, and completes with every line once storage is back."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections import Counter
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from relay_cli.status import gather, render
from relay_core.batch.run.finalize import output_ids
from relay_core.settings import Settings
from tests.integration.batch.conftest import (
    BatchFarm,
    chat_line,
    create,
    jsonl,
    read_lines,
    upload,
    wait_for,
)

pytestmark = pytest.mark.integration


def gauge(text: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found is not None, f"{name} not in /metrics"
    return float(found.group(1))


def status_text(settings: Settings) -> str:
    """What ``relay status`` prints for the farm."""
    buffer = StringIO()
    render(asyncio.run(gather(settings)), Console(file=buffer, width=200, color_system=None))
    return buffer.getvalue()


def test_output_storage_refused_is_shown_retried_and_nothing_is_lost(
    batch_farm: BatchFarm, tmp_path: Path
) -> None:
    farm = batch_farm(batch_finalize_retry_s=0.1, batch_finalize_retry_max_s=0.4, metrics_cache_s=0)
    storage = tmp_path / "files"
    lines = [chat_line(f"s{i}", f"question s{i}") for i in range(40)]
    with farm.client() as http:
        batch = create(http, upload(http, jsonl(lines)))
        # Mid-batch, storage starts refusing the output file: its path becomes a folder
        # (chmod would not stop root, who runs the tests; this fails the write for anyone).
        out_id, _ = output_ids(batch["id"])
        blocker = storage / f".{out_id}.part"
        blocker.mkdir()
        (blocker / "keep").write_text("a folder in the way")

        failing = wait_for(
            http, batch["id"], lambda b: b["status"] != "in_progress" and b["errors"] is not None
        )
        assert failing["status"] == "finalizing", failing
        assert failing["output_file_id"] is None
        errors = failing["errors"]
        assert errors["object"] == "list"
        [error] = errors["data"]
        assert error["code"] == "output_write_failed"
        assert error["line"] is None and error["param"] is None
        assert "could not be written" in error["message"], error
        assert str(storage) not in error["message"]  # the server's paths stay in its log

        # It is tried again (with back-off), and every try is counted.
        progress = http.get(f"/v1/batches/{batch['id']}/progress")
        assert progress.json()["finalize_error"] == error["message"]
        wait_for(
            http,
            batch["id"],
            lambda b: http.get(f"/v1/batches/{b['id']}/progress").json()["finalize_failures"] >= 3,
        )
        metrics = http.get("/metrics").text
        assert gauge(metrics, "relay_batch_finalize_failing") == 1
        assert gauge(metrics, "relay_batch_finalize_failures") >= 3
        shown = status_text(farm.settings)
        assert f"{batch['id']}: output not written" in shown, shown
        assert "could not be written to storage" in shown

        # Storage is back: the batch completes, every line once, and the cause is gone.
        shutil.rmtree(blocker)
        final = wait_for(http, batch["id"])
        assert final["status"] == "completed", final
        assert final["errors"] is None
        assert final["request_counts"] == {"total": 40, "completed": 40, "failed": 0}
        out = read_lines(http, final["output_file_id"])
        assert Counter(o["custom_id"] for o in out) == Counter(f"s{i}" for i in range(40))
        for o in out:
            content = o["response"]["body"]["choices"][0]["message"]["content"]
            assert content.endswith(": question " + o["custom_id"]), o
        assert final["error_file_id"] is None
        metrics = http.get("/metrics").text
    assert gauge(metrics, "relay_batch_finalize_failing") == 0
