"""Cancel, expiry, partial results, retry of failed lines, and permanent failures."""

from __future__ import annotations

import json
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
from tests.support.farm import model

pytestmark = pytest.mark.integration


def _ids(lines: list[dict[str, Any]]) -> list[str]:
    return [line["custom_id"] for line in lines]


def test_cancel_stops_dispatch_and_splits_the_lines(batch_farm: BatchFarm) -> None:
    # 4 x 600 rpm: 400 lines need ~10 s, so most are still waiting when the cancel comes.
    farm = batch_farm(lambda url: four_providers(url, rpm=600), batch_window_s=0.5)
    lines = [chat_line(f"c{i}", f"q{i}") for i in range(400)]
    with farm.client() as http:
        batch = create(http, upload(http, jsonl(lines)))
        wait_for(http, batch["id"], lambda b: b["request_counts"]["completed"] >= 20)
        cancelled = http.post(f"/v1/batches/{batch['id']}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] in ("cancelling", "cancelled")
        final = wait_for(http, batch["id"])
        out = read_lines(http, final["output_file_id"])
        err = read_lines(http, final["error_file_id"])
        again = http.post(f"/v1/batches/{batch['id']}/cancel")
    assert final["status"] == "cancelled"
    assert final["cancelling_at"] and final["cancelled_at"]
    counts = final["request_counts"]
    assert (counts["completed"], counts["failed"]) == (len(out), len(err))
    assert counts["total"] == 400 and len(out) + len(err) == 400
    assert sorted(_ids(out) + _ids(err)) == sorted(f"c{i}" for i in range(400))
    assert all(e["error"]["code"] == "batch_cancelled" and e["response"] is None for e in err)
    assert 20 <= len(out) < 200
    answered = sum(p["succeeded"] for p in farm.sim_stats()["providers"].values())
    assert answered < len(out) + 40  # dispatch stopped: at most the in-flight window more
    assert again.status_code == 200 and again.json()["status"] == "cancelled"


def _pinned_down(farm: Any) -> None:
    farm.sim("p-openai", outage=True)


def test_expiry_keeps_partial_output_and_retry_runs_the_rest(batch_farm: BatchFarm) -> None:
    farm = batch_farm(breaker_failures=2)
    _pinned_down(farm)
    lines = [chat_line(f"ok{i}", f"q{i}") for i in range(10)] + [
        chat_line(f"pin{i}", f"p{i}", model="p-openai/p-openai-m") for i in range(5)
    ]
    with farm.client() as http:
        batch = create(http, upload(http, jsonl(lines)), window="3s")
        final = wait_for(http, batch["id"])
        out = read_lines(http, final["output_file_id"])
        err = read_lines(http, final["error_file_id"])
        farm.sim("p-openai", outage=False)
        retried = http.post(f"/v1/batches/{batch['id']}/retry", json={"completion_window": "1h"})
        assert retried.status_code == 200, retried.text
        second = wait_for(http, retried.json()["id"])
        retry_input = http.get(f"/v1/files/{second['input_file_id']}/content").text
        retry_out = read_lines(http, second["output_file_id"])
    assert final["status"] == "expired" and final["expired_at"]
    assert _ids(out) == [f"ok{i}" for i in range(10)]
    assert _ids(err) == [f"pin{i}" for i in range(5)]
    assert all(e["error"]["code"] == "batch_expired" for e in err)
    assert final["request_counts"] == {"total": 15, "completed": 10, "failed": 5}
    # The retry batch holds exactly the failed lines, byte for byte, and runs them.
    assert [json.loads(x) for x in retry_input.splitlines()] == lines[10:]
    assert second["status"] == "completed" and second["completion_window"] == "1h"
    assert _ids(retry_out) == [f"pin{i}" for i in range(5)]
    assert {o["response"]["body"]["model"] for o in retry_out} == {"p-openai-m"}


def test_partial_results_and_progress_while_running(batch_farm: BatchFarm) -> None:
    farm = batch_farm(lambda url: four_providers(url, rpm=600))
    lines = [chat_line(f"r{i}", f"q{i}") for i in range(300)]
    with farm.client() as http:
        batch = create(http, upload(http, jsonl(lines)))
        running = wait_for(
            http, batch["id"], lambda b: 10 <= b["request_counts"]["completed"] < 250
        )
        partial = http.get(f"/v1/batches/{batch['id']}/results").text.splitlines()
        progress = http.get(f"/v1/batches/{batch['id']}/progress").json()
        http.post(f"/v1/batches/{batch['id']}/cancel")
        wait_for(http, batch["id"])
    assert running["status"] == "in_progress"
    assert len(partial) >= 10 and len(partial) < 300
    for raw in partial:
        line = json.loads(raw)
        assert line["response"]["status_code"] == 200
        assert line["response"]["body"]["choices"][0]["message"]["content"].endswith(
            ": q" + line["custom_id"][1:]
        )
    assert progress["request_counts"]["total"] == 300
    assert progress["dispatched"] >= progress["request_counts"]["completed"]
    assert set(progress["providers"]) <= {"p-openai", "p-gemini", "p-claude", "p-ollama"}
    assert sum(p["completed"] for p in progress["providers"].values()) >= 10


def _with_a_missing_model(url: str) -> list[dict[str, Any]]:
    providers = four_providers(url)
    providers[0]["models"].append(model("p-openai-gone"))
    return providers


def test_permanent_failures_go_to_the_error_file_with_the_upstream_answer(
    batch_farm: BatchFarm,
) -> None:
    farm = batch_farm(_with_a_missing_model)
    # The simulator no longer has the model the catalogue lists: it answers 404.
    farm.sim("p-openai", models=[{"id": "p-openai-m", "aliases": ["chat"]}])
    lines = [
        chat_line("good", "fine"),
        chat_line("gone", "x", model="p-openai/p-openai-gone"),
        chat_line("refused", "x", model="p-gemini/p-gemini-m", logprobs=True),
    ]
    with farm.client() as http:
        final = wait_for(http, create(http, upload(http, jsonl(lines)))["id"])
        out = read_lines(http, final["output_file_id"])
        err = {e["custom_id"]: e for e in read_lines(http, final["error_file_id"])}
    assert final["status"] == "completed"
    assert final["request_counts"] == {"total": 3, "completed": 1, "failed": 2}
    assert _ids(out) == ["good"]
    gone = err["gone"]["response"]
    assert gone["status_code"] == 404
    assert gone["body"]["error"]["code"] == "model_not_found"  # the simulator's own body
    refused = err["refused"]["response"]
    assert refused["status_code"] == 400 and refused["body"]["error"]["param"] == "logprobs"
    assert err["gone"]["error"] is None


def test_a_line_too_long_for_every_model_fails_at_once(batch_farm: BatchFarm) -> None:
    """ContextLengthExceeded is an InvalidRequest: refused for good, not re-queued until the
    window ends (issue 14, item 3)."""
    farm = batch_farm()
    lines = [chat_line("short", "fine"), chat_line("long", "word " * 40_000)]
    with farm.client() as http:
        final = wait_for(http, create(http, upload(http, jsonl(lines)))["id"])
        err = read_lines(http, final["error_file_id"])
    assert final["status"] == "completed"
    assert final["request_counts"] == {"total": 2, "completed": 1, "failed": 1}
    assert _ids(err) == ["long"]
    response = err[0]["response"]
    assert response["status_code"] == 400
    assert response["body"]["error"]["code"] == "context_length_exceeded"
    assert response["body"]["error"]["param"] == "messages"


def test_deleting_the_input_file_mid_batch_fails_the_unsent_lines(batch_farm: BatchFarm) -> None:
    farm = batch_farm(lambda url: four_providers(url, rpm=600))
    lines = [chat_line(f"d{i}", f"q{i}") for i in range(200)]
    with farm.client() as http:
        file_id = upload(http, jsonl(lines))
        batch = create(http, file_id)
        wait_for(http, batch["id"], lambda b: b["request_counts"]["completed"] >= 10)
        assert http.delete(f"/v1/files/{file_id}").status_code == 200
        final = wait_for(http, batch["id"])
        out = read_lines(http, final["output_file_id"])
        err = read_lines(http, final["error_file_id"])
    assert final["status"] == "completed"
    assert sorted(_ids(out) + _ids(err)) == sorted(f"d{i}" for i in range(200))
    assert len(out) >= 10 and len(err) > 50
    assert {e["error"]["code"] for e in err} == {"input_file_unavailable"}
