"""A provider misbehaves mid-batch: it flaps, hangs, or answers garbage or half an answer.
Its lines move to the healthy providers; every line is answered once, in the output file."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.faults.conftest import (
    FaultFactory,
    FaultFarm,
    answered_once,
    paced_providers,
    questions,
    submit,
    wait_until,
)
from tests.integration.batch.conftest import wait_for

pytestmark = pytest.mark.integration

SICK = "p-openai"  # the provider that misbehaves
SICK_MODEL = "p-openai-m"


def quick_providers(sim_url: str) -> list[dict[str, Any]]:
    """The four providers at 3,000 RPM each (the fault lasts the whole batch), the sick
    one giving up on a call after one second."""
    providers = paced_providers(sim_url, rpm=3000)
    for p in providers:
        if p["name"] == SICK:
            p["timeout_s"] = 1.0
    return providers


def grew(farm: FaultFarm, counter: str, by: int) -> Callable[[], bool]:
    """Whether the sick provider's ``counter`` grew by ``by`` since now."""
    start = farm.sim_provider_stats(SICK)[counter]
    return lambda: farm.sim_provider_stats(SICK)[counter] >= start + by


def test_a_flapping_provider_is_left_while_down_and_used_again_when_up(
    fault_farm: FaultFactory,
) -> None:
    farm = fault_farm()
    lines = questions(400)
    with farm.client() as http:
        batch_id = submit(http, lines)
        for _ in range(3):  # down, then up, three times while the batch runs
            farm.sim(SICK, outage=True)  # 503 to every call
            wait_until(grew(farm, "errors", 2), f"{SICK} answering 503")
            farm.sim(SICK, outage=False)
            # Its breaker lets it back in: it answers lines again.
            wait_until(grew(farm, "succeeded", 5), f"{SICK} answering again")
        running = http.get(f"/v1/batches/{batch_id}").json()
        final = wait_for(http, batch_id, timeout_s=60)
        answered_once(http, final, lines)
    assert running["status"] == "in_progress"  # the flapping was mid-batch


def test_lines_leave_a_provider_that_never_answers(fault_farm: FaultFactory) -> None:
    farm = fault_farm(quick_providers)
    farm.sim(SICK, hang=True)
    lines = questions(200)
    with farm.client() as http:
        final = wait_for(http, submit(http, lines), timeout_s=60)
        answered_once(http, final, lines, not_by=SICK_MODEL)
    assert farm.sim_provider_stats(SICK)["hung"] > 0


@pytest.mark.parametrize(
    ("fault", "counter"),
    [({"garbage": True}, "garbage"), ({"truncate": True}, "truncated")],
    ids=["not-json", "cut-short"],
)
def test_lines_leave_a_provider_that_answers_garbage(
    fault_farm: FaultFactory, fault: dict[str, Any], counter: str
) -> None:
    farm = fault_farm(quick_providers)
    farm.sim(SICK, **fault)
    lines = questions(200)
    with farm.client() as http:
        final = wait_for(http, submit(http, lines), timeout_s=60)
        answered_once(http, final, lines, not_by=SICK_MODEL)
    assert farm.sim_provider_stats(SICK)[counter] > 0
