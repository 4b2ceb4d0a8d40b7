"""A worker SIGKILLed mid workflow batch, with the DEFAULT line timeout (180 s) and the default
visibility timeout (300 s), so neither the sweeper nor Celery's own redelivery can finish the
batch within the test: the runs whose step the dead worker held (in its call, or recorded and
not yet handed on) are resumed from their last recorded step as soon as its holds stop moving,
and every line completes with each of its steps recorded once."""

from __future__ import annotations

import signal
from collections import Counter

import pytest

from relay_core.settings import Settings
from tests.faults.conftest import FaultFactory, wait_until
from tests.faults.test_worker_death import held_by
from tests.integration.batch.conftest import read_lines, upload, wait_for
from tests.integration.workflow.test_batch import ENDPOINT, run_lines, topic
from tests.support.workflows import SUPPORT_PATH, support_workflow

pytestmark = pytest.mark.integration

LINE_TIMEOUT_S = Settings.model_fields["batch_line_timeout_s"].default  # 180 s
LINES = 150


def test_runs_held_by_a_sigkilled_worker_go_on_from_their_last_step(
    fault_farm: FaultFactory,
) -> None:
    farm = fault_farm(
        sim_overrides={"latency_ms": 200},
        workers=2,
        batch_line_timeout_s=LINE_TIMEOUT_S,
        catalogue_extra={"workflows": [support_workflow()]},
    )
    doomed, survivor = farm.workers
    with farm.client() as http:
        r = http.post(
            "/v1/batches",
            json={
                "input_file_id": upload(http, run_lines(LINES)),
                "endpoint": ENDPOINT,
                "completion_window": "24h",
            },
        )
        assert r.status_code == 200, r.text
        batch_id = r.json()["id"]

        def holds_later_steps() -> bool:
            # Steps past the first: runs that recorded a step already when the worker dies.
            held = [i for i in held_by(farm, doomed) if i.startswith(batch_id)]
            return len(held) >= 4 and any(not i.endswith(":w0") for i in held)

        wait_until(holds_later_steps, "the doomed worker holds steps of runs under way")
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)
        final = wait_for(http, batch_id, timeout_s=LINE_TIMEOUT_S / 3)
        out = read_lines(http, final["output_file_id"])
        err = read_lines(http, final["error_file_id"])
        resent = http.get(f"/v1/batches/{batch_id}/progress").json()["resent"]
    assert err == [], err[:1]
    assert final["status"] == "completed", final
    assert final["request_counts"] == {"total": LINES, "completed": LINES, "failed": 0}
    assert Counter(o["custom_id"] for o in out) == Counter(f"q{i}" for i in range(LINES))
    for o in out:
        run = o["response"]["body"]
        assert run["status"] == "completed", run
        steps = run["steps"]
        assert [s["step"] for s in steps] == SUPPORT_PATH[topic(int(o["custom_id"][1:]))]
        assert [s["index"] for s in steps] == list(range(len(steps)))  # each step once
    assert resent.get("worker_died", 0) >= 1, resent
    assert "overdue" not in resent, resent  # none waited for the line timeout
    assert survivor.poll() is None
