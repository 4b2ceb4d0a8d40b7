"""Faults cost seconds, not the line timeout (issue #13 item 7), with the DEFAULT line timeout
(180 s: a short one in a test would hide the stall).

A worker SIGKILLed mid-batch: the lines it held are sent again as soon as its holds stop
moving (counted as ``worker_died`` re-sends, none ``overdue``), and the batch completes with
every line once. A provider that hangs holds its own share of the batch's window and no more:
the other providers keep answering lines while it holds its share.
"""

from __future__ import annotations

import signal
from typing import Any

import pytest

from relay_core.settings import Settings
from tests.faults.conftest import (
    FaultFactory,
    answered_once,
    paced_providers,
    questions,
    submit,
    wait_until,
)
from tests.faults.test_worker_death import held_by
from tests.integration.batch.conftest import wait_for

pytestmark = pytest.mark.integration

LINE_TIMEOUT_S = Settings.model_fields["batch_line_timeout_s"].default  # 180 s
HUNG = "p-openai"  # the provider that never answers


def test_lines_held_by_a_sigkilled_worker_are_sent_again_at_once(
    fault_farm: FaultFactory,
) -> None:
    # Slow answers keep lines in the doomed worker's hands when it dies.
    farm = fault_farm(
        sim_overrides={"latency_ms": 200}, workers=2, batch_line_timeout_s=LINE_TIMEOUT_S
    )
    doomed, survivor = farm.workers
    lines = questions(300)
    with farm.client() as http:
        batch_id = submit(http, lines)

        def holds_lines() -> bool:
            return sum(1 for i in held_by(farm, doomed) if i.startswith(batch_id)) >= 2

        wait_until(holds_lines, "the doomed worker holds batch lines")
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)
        # Well within the line timeout: only the re-send on the worker's death can make it.
        final = wait_for(http, batch_id, timeout_s=LINE_TIMEOUT_S / 3)
        answered_once(http, final, lines)
        resent = http.get(f"/v1/batches/{batch_id}/progress").json()["resent"]
    assert resent.get("worker_died", 0) >= 1, resent
    assert "overdue" not in resent, resent  # none waited for the line timeout
    assert survivor.poll() is None


def hung_waits_long(sim_url: str) -> list[dict[str, Any]]:
    """The four providers; the hung one with the catalogue's default call timeout (60 s, not
    the tests' 5 s, which its breaker would soon take for an outage)."""
    providers = paced_providers(sim_url)
    for p in providers:
        if p["name"] == HUNG:
            del p["timeout_s"]
    return providers


def test_a_hung_provider_holds_only_its_share_of_the_window(fault_farm: FaultFactory) -> None:
    farm = fault_farm(hung_waits_long, batch_line_timeout_s=LINE_TIMEOUT_S)
    farm.sim(HUNG, hang=True)  # accepts every call, never answers
    lines = questions(300)
    with farm.client() as http:
        batch_id = submit(http, lines)
        wait_until(lambda: farm.sim_provider_stats(HUNG)["in_flight"] > 0, f"{HUNG} holds calls")
        # With one window for all, its lines would fill it within a few dozen lines and
        # starve the others for its 60 s call timeout; with a share each, the others go on.
        wait_for(http, batch_id, lambda b: b["request_counts"]["completed"] >= 250, 40)
        hung = farm.sim_provider_stats(HUNG)
        progress = http.get(f"/v1/batches/{batch_id}/progress").json()
    assert hung["in_flight"] > 0 and hung["succeeded"] == 0, hung  # it still holds its share
    assert hung["in_flight"] <= 30, hung  # its share, not the window
    answered = {name: p["completed"] for name, p in progress["providers"].items()}
    assert HUNG not in answered and len(answered) == 3 and sum(answered.values()) >= 250, answered
