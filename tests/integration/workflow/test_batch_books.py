"""A workflow batch line's steps keep a plain line's books, on a real farm: a run longer than
the line timeout is never re-sent (each step renews the line's sign of life), a cancel stops
the runs already started at their next step, and the steps stand aside while an interactive
request waits for their provider."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio

from relay_core.dispatch.priority import Priority
from tests.integration.batch.conftest import BATCH_DEFAULTS, read_lines, upload, wait_for
from tests.integration.workflow.test_batch import ENDPOINT, fast_providers, run_lines, topic
from tests.support.farm import Farm, FarmFactory, farm_factory
from tests.support.workflows import SUPPORT_PATH, support_workflow

pytestmark = pytest.mark.integration


@pytest.fixture
def make_farm(tmp_path: Path) -> Iterator[FarmFactory]:
    defaults = {**BATCH_DEFAULTS, "storage_dir": tmp_path / "files"}
    with farm_factory(tmp_path, fast_providers, **defaults) as make:

        def with_workflows(**kw: Any) -> Farm:
            return make(catalogue_extra={"workflows": [support_workflow()]}, **kw)

        yield with_workflows


def start_batch(http: httpx.Client, n: int) -> str:
    r = http.post(
        "/v1/batches",
        json={
            "input_file_id": upload(http, run_lines(n)),
            "endpoint": ENDPOINT,
            "completion_window": "24h",
        },
    )
    assert r.status_code == 200, r.text
    batch_id: str = r.json()["id"]
    return batch_id


def run_of(http: httpx.Client, batch_id: str, index: int) -> dict[str, Any] | None:
    """Line ``index``'s run as GET shows it (None: not started)."""
    r = http.get(f"/v1/workflows/support/runs/wfrun_{batch_id}_{index}")
    return None if r.status_code == 404 else dict(r.json())


def wait_until(check: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s} s"
        time.sleep(0.02)  # polling a condition, bounded by the deadline above


def test_a_run_longer_than_the_line_timeout_is_not_sent_again(make_farm: FarmFactory) -> None:
    # Three calls of 0.8 s a run, and a line timeout of 1.2 s: each run takes twice the
    # timeout, so only the steps' renewals of the line's sign of life keep it from the sweeper.
    farm = make_farm(sim_overrides={"latency_ms": 800}, batch_line_timeout_s=1.2)
    n = 12
    with farm.client() as http:
        batch_id = start_batch(http, n)
        batch = wait_for(http, batch_id, timeout_s=60)
        records = read_lines(http, batch["output_file_id"])
        resent = http.get(f"/v1/batches/{batch_id}/progress").json()["resent"]
    assert batch["request_counts"] == {"total": n, "completed": n, "failed": 0}, batch
    assert resent == {}, resent  # none overdue: the sweeper re-sent nothing
    for record in records:
        run = record["response"]["body"]
        assert run["ended_at"] - run["created_at"] >= 2, run  # longer than the line timeout
        i = int(record["custom_id"][1:])
        assert [s["step"] for s in run["steps"]] == SUPPORT_PATH[topic(i)]
    calls = sum(1 for r in records for s in r["response"]["body"]["steps"] if s["provider"])
    stats = farm.sim_stats()["providers"]
    assert sum(p["requests"] for p in stats.values()) == calls  # no step called twice


def test_a_cancel_stops_the_runs_started_at_their_next_step(make_farm: FarmFactory) -> None:
    farm = make_farm(sim_overrides={"latency_ms": 600})
    n = 40
    with farm.client() as http:
        batch_id = start_batch(http, n)

        def a_step_recorded() -> bool:
            run = run_of(http, batch_id, 0)
            return run is not None and len(run["steps"]) >= 1

        wait_until(a_step_recorded, "line 0's run recorded a step")
        r = http.post(f"/v1/batches/{batch_id}/cancel")
        assert r.status_code == 200, r.text
        final = wait_for(http, batch_id, timeout_s=60)
        out = read_lines(http, final["output_file_id"])
        err = read_lines(http, final["error_file_id"])
        runs = [run_of(http, batch_id, i) for i in range(n)]
    assert final["status"] == "cancelled", final
    seen = Counter(line["custom_id"] for line in out + err)
    assert seen == Counter(f"q{i}" for i in range(n)), "a line is missing or recorded twice"
    # A run the cancel stopped is a cancelled line, with the steps it made beside it.
    stopped = [e for e in err if "relay" in e]
    for e in stopped:
        assert e["response"] is None and e["error"]["code"] == "batch_cancelled", e
        run = e["relay"]["run"]
        assert run["status"] == "cancelled", run
        assert run["error"].startswith("the batch was cancelled before step "), run
    # Runs stopped midway: a step made, the next one not.
    assert any(e["relay"]["run"]["steps"] for e in stopped), stopped
    assert all(e["error"]["code"] == "batch_cancelled" for e in err), err
    # No run goes on after the cancel: each ended (or never started).
    assert all(run is None or run["status"] != "running" for run in runs), runs
    assert len(out) + len(stopped) <= sum(1 for run in runs if run is not None)


HELD = "p-openai"  # the provider an interactive request waits for


def test_the_steps_stand_aside_while_an_interactive_request_waits(
    make_farm: FarmFactory,
) -> None:
    # A step stands aside for at most token_wait_max_s: longer than this test looks. Each
    # standing aside holds a worker slot: enough of them that the other steps still go.
    farm = make_farm(sim_overrides={"latency_ms": 50}, token_wait_max_s=10.0, concurrency=128)
    prefix = farm.settings.key_prefix

    def requests() -> Counter[str]:
        stats = farm.sim_stats()["providers"]
        return Counter({name: p["requests"] for name, p in stats.items()})

    def others(counts: Counter[str]) -> int:
        return sum(v for k, v in counts.items() if k != HELD)

    async def marked() -> tuple[int, int]:
        """The held provider's calls from a while after an interactive request marked
        itself waiting for it to a while later, the other providers' calls going on."""
        client = redis.asyncio.Redis.from_url(farm.settings.redis_url)
        try:
            async with Priority(client, prefix, mark_s=30).interactive("chatcmpl-t", HELD):
                # Calls that passed the gate before the mark may still reach the provider.
                base = others(requests())
                await asyncio.to_thread(
                    wait_until, lambda: others(requests()) >= base + 10, "the others go on"
                )
                before = requests()
                await asyncio.to_thread(
                    wait_until, lambda: others(requests()) >= others(before) + 30, "and on"
                )
                after = requests()
        finally:
            await client.aclose()
        return before[HELD], after[HELD]

    with farm.client() as http:
        batch_id = start_batch(http, 100)
        wait_until(lambda: requests()[HELD] >= 5, f"{HELD} serves steps")
        before, after = asyncio.run(marked())
        batch = wait_for(http, batch_id, timeout_s=90)
    assert after == before, (before, after)  # not one call while the request waited
    assert batch["request_counts"]["completed"] == 100, batch
