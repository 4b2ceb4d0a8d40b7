"""Workflow runs on a real farm: each model step a chat task on a provider queue, the run
followed through the API, every step recorded once (docs/workflows.md)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.support.farm import Farm, FarmFactory
from tests.support.workflows import SUPPORT_PATH, support_workflow

pytestmark = pytest.mark.integration


def finished(http: httpx.Client, url: str, limit_s: float = 30) -> dict[str, Any]:
    """The run once it ended (a bounded wait on its status)."""
    deadline = time.monotonic() + limit_s
    while True:
        run: dict[str, Any] = http.get(url).json()
        if run["status"] != "running":
            return run
        assert time.monotonic() < deadline, run
        time.sleep(0.05)  # polling a condition, bounded by the deadline above


def start(http: httpx.Client, question: str, name: str = "support", **extra: Any) -> str:
    r = http.post(f"/v1/workflows/{name}/runs", json={"input": {"question": question}, **extra})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "workflow.run" and body["status"] == "running"
    return f"/v1/workflows/{name}/runs/{body['id']}"


def test_a_run_visits_every_step_once_and_answers(make_farm: FarmFactory) -> None:
    farm: Farm = make_farm()
    with farm.client() as http:
        runs = {topic: start(http, f"my {topic} question") for topic in SUPPORT_PATH}
        done = {topic: finished(http, url) for topic, url in runs.items()}
    for topic, run in done.items():
        assert run["status"] == "completed", run
        assert [s["step"] for s in run["steps"]] == SUPPORT_PATH[topic]
        assert [s["index"] for s in run["steps"]] == list(range(len(SUPPORT_PATH[topic])))
        calls = [s for s in run["steps"] if s["kind"] in ("model", "classify")]
        assert all(s["provider"] and s["attempts"] >= 1 for s in calls), calls
        assert run["steps"][4]["label"] == topic
    assert done["billing"]["output"].startswith("BILLING: sim:")
    assert "final reply" in done["technical"]["output"]
    # Three calls a run, each once: the simulator saw exactly the runs' calls.
    assert sum(p["requests"] for p in farm.sim_stats()["providers"].values()) == 6


def test_a_posted_workflow_runs_and_a_bad_one_is_refused(make_farm: FarmFactory) -> None:
    farm: Farm = make_farm()
    posted = support_workflow(name="mine")
    with farm.client() as http:
        run = finished(http, start(http, "a billing one", name="mine", workflow=posted))
        broken = {
            **posted,
            "steps": [
                *posted["steps"][:1],
                {**posted["steps"][1], "next": [{"when": "valid or not", "to": "end"}]},
            ],
        }
        bad = http.post(
            "/v1/workflows/mine/runs", json={"input": {"question": "q"}, "workflow": broken}
        )
        unknown = http.post("/v1/workflows/nope/runs", json={"input": {}})
        wrong_input = http.post("/v1/workflows/support/runs", json={"input": {"q": 1}})
    assert run["status"] == "completed" and run["workflow"] == "mine"
    assert bad.status_code == 400
    error = bad.json()["error"]
    assert (
        "workflow 'mine' → step 'validate' → next[0].when: 'valid or not' is not a condition"
        in error["message"]
    )
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "invalid_request_error"
    assert wrong_input.status_code == 400 and wrong_input.json()["error"]["param"] == "input"


def test_runs_belong_to_the_key_that_started_them(make_farm: FarmFactory) -> None:
    farm: Farm = make_farm(api_keys=["key-a", "key-b"])
    with (
        farm.client(headers={"authorization": "Bearer key-a"}) as a,
        farm.client(headers={"authorization": "Bearer key-b"}) as b,
    ):
        url = start(a, "a technical one")
        assert finished(a, url)["status"] == "completed"
        other = b.get(url)
    assert other.status_code == 404
    assert other.json()["error"]["message"].startswith("No such run of workflow 'support'")


def test_a_provider_down_is_failed_over_within_a_step(make_farm: FarmFactory) -> None:
    farm: Farm = make_farm()
    farm.sim("p-openai", error_rate=1.0)
    with farm.client() as http:
        urls = [start(http, f"billing {i}") for i in range(8)]
        runs = [finished(http, u) for u in urls]
    assert all(r["status"] == "completed" for r in runs), [r["error"] for r in runs]
    calls = [s for r in runs for s in r["steps"] if s["provider"]]
    assert all(s["provider"] != "p-openai" for s in calls)
    hopped = [s for s in calls if s["failures"]]
    assert hopped and all(f["provider"] == "p-openai" for s in hopped for f in s["failures"])


def test_the_catalogues_workflows_are_listed(make_farm: FarmFactory) -> None:
    farm: Farm = make_farm()
    with farm.client() as http:
        r = http.get("/v1/workflows")
    assert r.status_code == 200, r.text
    listed = r.json()
    assert listed["object"] == "list"
    (support,) = listed["data"]
    assert support["object"] == "workflow" and support["name"] == "support"
    assert support["description"] == support_workflow()["description"]
    assert support["input_schema"]["required"] == ["question"]
    steps = [(s["name"], s["kind"], s["model"]) for s in support["steps"]]
    assert steps == [
        ("generate", "model", "chat"),
        ("validate", "validate", None),
        ("repair", "model", "chat"),
        ("classify", "classify", "chat"),
        ("billing", "transform", None),
        ("technical", "transform", None),
    ]
