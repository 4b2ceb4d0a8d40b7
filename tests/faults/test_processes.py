"""A worker process or the API process dies mid-batch; the batch finishes, every line once."""

from __future__ import annotations

import signal

import pytest

from tests.faults.conftest import FaultFactory, answered_once, questions, submit, wait_until
from tests.integration.batch.conftest import wait_for

pytestmark = pytest.mark.integration


def test_a_sigkilled_worker_strands_nothing(fault_farm: FaultFactory) -> None:
    # Slow answers keep lines in the doomed worker's hands when it dies.
    farm = fault_farm(sim_overrides={"latency_ms": 100}, workers=2)
    doomed, survivor = farm.workers
    lines = questions(300)
    with farm.client() as http:
        batch_id = submit(http, lines)
        wait_for(http, batch_id, lambda b: b["request_counts"]["completed"] >= 60)
        wait_until(lambda: farm.sim_totals()["in_flight"] > 0, "calls in flight")
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)
        stalled = http.get(f"/v1/batches/{batch_id}").json()
        final = wait_for(http, batch_id, timeout_s=60)
        answered_once(http, final, lines)
    assert stalled["status"] == "in_progress"
    assert stalled["request_counts"]["completed"] < len(lines)
    assert survivor.poll() is None


def test_the_api_restarts_and_the_new_one_sees_the_batch_through(
    fault_farm: FaultFactory,
) -> None:
    farm = fault_farm()
    lines = questions(300)
    with farm.client() as http:
        batch_id = submit(http, lines)
        wait_for(http, batch_id, lambda b: b["request_counts"]["completed"] >= 60)
        answered = farm.sim_totals()["succeeded"]

        def workers_carry_on() -> None:  # no API process runs meanwhile
            wait_until(
                lambda: farm.sim_totals()["succeeded"] >= answered + 60, "progress without an API"
            )

        farm.restart_api(after_kill=workers_carry_on)
        final = wait_for(http, batch_id, timeout_s=60)
        answered_once(http, final, lines)
