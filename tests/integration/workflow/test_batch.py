"""A batch of workflow runs on a real farm: lines whose url is ``/v1/workflows/support`` each
run generate → validate → repair → classify → answer, with a provider that answers 30 % of
its JSON in prose (failed over by the chat path), and again with a provider down; each line's
steps are in its one record."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.batch.conftest import BATCH_DEFAULTS, jsonl, read_lines, upload, wait_for
from tests.integration.farm.conftest import four_providers
from tests.support.farm import Farm, FarmFactory, farm_factory
from tests.support.workflows import SUPPORT_PATH, support_workflow

pytestmark = pytest.mark.integration

LINES = 300
ENDPOINT = "/v1/workflows/support"


def fast_providers(sim_url: str) -> list[dict[str, Any]]:
    return four_providers(sim_url, rpm=1200)


@pytest.fixture
def make_farm(tmp_path: Path) -> Iterator[FarmFactory]:
    defaults = {**BATCH_DEFAULTS, "storage_dir": tmp_path / "files"}
    with farm_factory(tmp_path, fast_providers, **defaults) as make:

        def with_workflows(**kw: Any) -> Farm:
            return make(catalogue_extra={"workflows": [support_workflow()]}, **kw)

        yield with_workflows


def topic(i: int) -> str:
    return "billing" if i % 2 else "technical"


def run_lines(n: int) -> bytes:
    return jsonl(
        [
            {
                "custom_id": f"q{i}",
                "method": "POST",
                "url": ENDPOINT,
                "body": {"input": {"question": f"question {i} about {topic(i)}"}},
            }
            for i in range(n)
        ]
    )


def run_batch(http: httpx.Client, n: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    file_id = upload(http, run_lines(n))
    r = http.post(
        "/v1/batches",
        json={"input_file_id": file_id, "endpoint": ENDPOINT, "completion_window": "24h"},
    )
    assert r.status_code == 200, r.text
    batch = wait_for(http, r.json()["id"], timeout_s=110)
    return batch, read_lines(http, batch["output_file_id"])


def check_records(
    batch: dict[str, Any], records: list[dict[str, Any]], n: int
) -> list[dict[str, Any]]:
    """Every line once, completed, with its steps in order, once each; the calls' visits."""
    assert batch["status"] == "completed", batch
    assert batch["request_counts"] == {"total": n, "completed": n, "failed": 0}
    assert sorted(r["custom_id"] for r in records) == sorted(f"q{i}" for i in range(n))
    calls = []
    for record in records:
        run = record["response"]["body"]
        assert record["response"]["status_code"] == 200 and run["status"] == "completed", run
        i = int(record["custom_id"][1:])
        assert [s["step"] for s in run["steps"]] == SUPPORT_PATH[topic(i)]
        assert [s["index"] for s in run["steps"]] == list(range(len(run["steps"])))
        assert run["output"].startswith("BILLING: ") == (topic(i) == "billing")
        calls += [s for s in run["steps"] if s["kind"] in ("model", "classify")]
    return calls


def test_a_batch_of_runs_with_invalid_json_answers(make_farm: FarmFactory) -> None:
    # No re-ask on the same candidate: the chat path fails an invalid answer over to another
    # candidate with the step's own request (a re-ask's answer would echo the re-ask, not the
    # step's prompt, and the workflow's own repair step is what this test follows).
    farm = make_farm(repair_max_attempts=0)
    farm.sim("p-openai", invalid_json_rate=0.3)
    with farm.client() as http:
        batch, records = run_batch(http, LINES)
    calls = check_records(batch, records, LINES)
    stats = farm.sim_stats()["providers"]
    # Every call the simulator answered is one step's attempt: none ran twice unseen.
    assert sum(p["requests"] for p in stats.values()) == sum(s["attempts"] for s in calls)
    assert stats["p-openai"]["invalid_json"] > 0
    moved = [s for s in calls if any(c.endswith(":failover") for c in s["checks"])]
    assert moved and all(s["checks"][-1].endswith(":delivered") for s in moved)
    assert all(c.startswith("p-openai/") for s in moved for c in s["checks"][:-1])
    # The workflow's own validate step saw only JSON (the chat path repaired the prose).
    assert all(s["valid"] is not False for s in calls if s["step"] != "classify")


def test_a_batch_of_runs_fails_over_from_a_provider_that_is_down(make_farm: FarmFactory) -> None:
    farm = make_farm()
    farm.sim("p-claude", error_rate=1.0)
    with farm.client() as http:
        batch, records = run_batch(http, 100)
    calls = check_records(batch, records, 100)
    served = Counter(s["provider"] for s in calls)
    assert "p-claude" not in served and len(served) == 3, served
    hopped = [f for s in calls for f in s["failures"]]
    assert hopped and {f["provider"] for f in hopped} == {"p-claude"}


def test_a_workflow_batch_checks_its_endpoint_and_lines(make_farm: FarmFactory) -> None:
    farm = make_farm()
    with farm.client() as http:
        unknown = http.post(
            "/v1/batches",
            json={
                "input_file_id": upload(http, run_lines(1)),
                "endpoint": "/v1/workflows/nope",
                "completion_window": "24h",
            },
        )
        bad = jsonl(
            [{"custom_id": "a", "method": "POST", "url": ENDPOINT, "body": {"messages": []}}]
        )
        r = http.post(
            "/v1/batches",
            json={
                "input_file_id": upload(http, bad),
                "endpoint": ENDPOINT,
                "completion_window": "24h",
            },
        )
        failed = wait_for(http, r.json()["id"])
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "endpoint"
    assert failed["status"] == "failed"
    assert failed["errors"]["data"][0]["message"] == 'Line 1: body must be {"input": ...}.'
