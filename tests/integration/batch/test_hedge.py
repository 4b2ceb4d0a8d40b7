"""A straggler line is sent again to another candidate, recorded once, its twin counted.

Provider ``a`` answers in 20 ms but, rarely, 5 s late (the simulator's straggler setting,
seeded: its 35th call is the only straggler in its first 120); ``b`` never straggles. Once the
worker has seen enough of ``a``'s answers, a visit of ``a`` that runs far longer than their
p99 (here the floor, ``batch_hedge_min_s``) is copied to ``b``; the copy's answer is recorded,
and the straggler, still out, is cancelled and counted as discarded.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.integration.batch import conftest as b
from tests.integration.batch.conftest import BatchFarm
from tests.support.farm import model, sim_provider

LINES = 120


def settled_progress(http: httpx.Client, batch_id: str, timeout_s: float = 15.0) -> Any:
    """The batch's progress once every twin it hedged has ended: a twin slower than its
    line's recorded answer (the straggler) is counted when it comes back, which may be after
    the batch completed (a bounded wait on that condition, not a sleep)."""
    deadline = time.monotonic() + timeout_s
    while True:
        progress = http.get(f"/v1/batches/{batch_id}/progress").json()
        if progress["discarded"] >= progress["hedged"] or time.monotonic() >= deadline:
            return progress
        time.sleep(0.05)


SEED = 61  # a's straggler draws (rate 0.02): only its 35th call of the first 120


def two_providers(sim_url: str) -> list[dict[str, Any]]:
    return [
        sim_provider(name, "openai", sim_url, [model(f"{name}-m", aliases=["chat"])], rpm=600)
        for name in ("a", "b")
    ]


def test_a_straggler_is_hedged_recorded_once_and_its_twin_counted(batch_farm: BatchFarm) -> None:
    farm = batch_farm(
        providers_fn=two_providers,
        sim_overrides={"latency_ms": 20},
        sim_seed=SEED,
        batch_hedge_min_s=0.5,
    )
    farm.sim("a", straggler_rate=0.02, straggler_ms=5000)
    with farm.client() as http:
        file_id = b.upload(
            http, b.jsonl([b.chat_line(f"q{i}", f"question {i}") for i in range(LINES)])
        )
        batch = b.create(http, file_id, window="60s")
        done = b.wait_for(http, batch["id"], timeout_s=60)
        progress = settled_progress(http, batch["id"])
        output = b.read_lines(http, done["output_file_id"])
    assert done["status"] == "completed"
    assert done["request_counts"] == {"total": LINES, "completed": LINES, "failed": 0}
    assert sorted(line["custom_id"] for line in output) == sorted(f"q{i}" for i in range(LINES))
    assert progress["hedged"] >= 1
    assert 1 <= progress["discarded"] <= progress["hedged"]
    stats = farm.sim_stats()["providers"]
    calls = stats["a"]["accepted"] + stats["b"]["accepted"]
    assert LINES < calls <= LINES + progress["hedged"]  # the copies' calls, nothing else twice
