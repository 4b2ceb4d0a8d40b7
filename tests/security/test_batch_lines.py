"""One batch line must not stall a worker (#15 item 2): a line's size is capped where the file
comes in (``RELAY_BATCH_MAX_LINE_BYTES``, a 400 naming the line, nothing stored or queued),
and a line whose visit is slow is never sent again while it runs (the sweeper re-sends only
lines whose visit stopped renewing their sign of life)."""

from __future__ import annotations

import json

import pytest

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

MIB = 1024 * 1024


def test_a_line_over_the_size_cap_is_refused_at_upload(batch_farm: BatchFarm) -> None:
    farm = batch_farm()  # the default cap: 1 MiB
    huge = chat_line("big", "x" * (2 * MIB))
    data = jsonl([chat_line("a", "q"), chat_line("b", "q"), huge, chat_line("c", "q")])
    with farm.client() as http:
        refused = http.post(
            "/v1/files", files={"file": ("b.jsonl", data)}, data={"purpose": "batch"}
        )
        files = http.get("/v1/files").json()["data"]
        batches = http.get("/v1/batches").json()["data"]
        # A line of exactly the cap is fine.
        at_cap = json.dumps(chat_line("a", "")).encode()
        at_cap = json.dumps(chat_line("a", "y" * (MIB - len(at_cap)))).encode()
        assert len(at_cap) == MIB
        accepted = upload(http, at_cap + b"\n")
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == "file"
    assert error["message"] == (
        "Line 3 of the file is longer than the 1,048,576 bytes a batch line may hold "
        "(RELAY_BATCH_MAX_LINE_BYTES)."
    )
    assert files == [] and batches == []  # nothing stored, nothing queued
    assert accepted.startswith("file-")


def test_a_slow_visit_is_never_sent_twice(batch_farm: BatchFarm) -> None:
    # The upstream takes four line timeouts to answer: the sweeper looks at the line every
    # second meanwhile, and must see it alive throughout.
    farm = batch_farm(batch_line_timeout_s=1.0)
    with farm.client() as http:
        batch = create(http, upload(http, jsonl([chat_line("slow", "[sim:slow=4000] q")])))
        final = wait_for(http, batch["id"])
        out = read_lines(http, final["output_file_id"])
    assert final["status"] == "completed" and [o["custom_id"] for o in out] == ["slow"]
    calls = {name: p["accepted"] for name, p in farm.sim_stats()["providers"].items()}
    assert sum(calls.values()) == 1, calls  # the line reached an upstream once
