"""A batch line that keeps failing upstream is tried a bounded number of times, then fails
with its last upstream answer; a cancel shows a line that ran with that answer (#14 item 2)."""

from __future__ import annotations

from typing import Any

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
from tests.integration.farm.conftest import four_providers
from tests.support.farm import Farm, model, sim_provider

pytestmark = pytest.mark.integration

# What the simulator's OpenAI-family provider answers with its 500s.
SIM_500_BODY = {
    "error": {
        "message": "The server had an error while processing your request.",
        "type": "server_error",
        "param": None,
        "code": None,
    }
}
# The breakers stay closed, so that every try of a failing line reaches the upstream.
CLOSED = {"breaker_failures": 1000, "breaker_min_calls": 1000}


def _with_a_broken_provider(url: str) -> list[dict[str, Any]]:
    """The four "chat" providers, and p-down, whose one model some lines name."""
    return [*four_providers(url), sim_provider("p-down", "openai", url, [model("p-down-m")])]


def _down_line(custom_id: str) -> dict[str, Any]:
    return chat_line(custom_id, "q", model="p-down/p-down-m")


def _errors(farm: Farm, provider: str) -> int:
    found: int = farm.sim_stats()["providers"][provider]["errors"]
    return found


def test_a_line_that_always_fails_upstream_fails_after_its_attempts(
    batch_farm: BatchFarm,
) -> None:
    farm = batch_farm(_with_a_broken_provider, batch_max_line_attempts=3, **CLOSED)
    farm.sim("p-down", error_rate=1.0)  # p-down answers every request with a 500
    lines = [chat_line(f"ok{i}", f"q{i}") for i in range(8)]
    lines += [_down_line("down0"), _down_line("down1")]
    with farm.client() as http:
        final = wait_for(http, create(http, upload(http, jsonl(lines)))["id"], timeout_s=60)
        out = read_lines(http, final["output_file_id"])
        err = read_lines(http, final["error_file_id"])
    assert final["status"] == "completed"
    assert final["request_counts"] == {"total": 10, "completed": 8, "failed": 2}
    assert [o["custom_id"] for o in out] == [f"ok{i}" for i in range(8)]
    assert [e["custom_id"] for e in err] == ["down0", "down1"]
    for line in err:  # the last upstream answer: its status and body
        assert line["error"] is None
        assert line["response"]["status_code"] == 500
        assert line["response"]["body"] == SIM_500_BODY
    assert _errors(farm, "p-down") == 2 * 3  # three tries each, no more


def test_after_a_cancel_a_line_that_ran_shows_its_last_failure(batch_farm: BatchFarm) -> None:
    farm = batch_farm(_with_a_broken_provider, **CLOSED)
    farm.sim("p-down", error_rate=1.0)
    lines = [chat_line("ok", "q"), _down_line("down")]
    with farm.client() as http:
        batch = create(http, upload(http, jsonl(lines)))
        wait_for(http, batch["id"], lambda b: b["request_counts"]["completed"] == 1)
        # The down line was tried (twice: a plain 500 is tried again at once), then backs off.
        wait_for(http, batch["id"], lambda _: _errors(farm, "p-down") >= 2)
        assert http.post(f"/v1/batches/{batch['id']}/cancel").status_code == 200
        final = wait_for(http, batch["id"])
        err = read_lines(http, final["error_file_id"])
    assert final["status"] == "cancelled"
    assert final["request_counts"] == {"total": 2, "completed": 1, "failed": 1}
    assert [e["custom_id"] for e in err] == ["down"]
    assert err[0]["error"] is None  # not "not executed because the batch was cancelled"
    assert err[0]["response"]["status_code"] == 500
    assert err[0]["response"]["body"] == SIM_500_BODY
