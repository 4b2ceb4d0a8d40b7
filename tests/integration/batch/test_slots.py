"""One worker started as ``relay up`` starts it keeps a slow pool busy (Little's law).

Answers take 10 s and the provider allows 20 calls/s: keeping it busy needs about 200 calls in
flight at once, three times the 64 slots a worker starts with. The worker's slots grow with
the rate times the answer time it measures (``relay_workers/elastic.py``), and the feeder's
window with the time the lines have been out before the first answer: the simulator's own
count of calls in flight at once says whether the worker kept up.
"""

from __future__ import annotations

from typing import Any

from relay_core.limits.plan import PACING_MARGIN
from relay_core.settings import Settings
from tests.integration.batch.conftest import BatchFarm, chat_line, create, jsonl, upload, wait_for
from tests.support.farm import model, sim_provider

RPM = 1200
ANSWER_S = 10.0
LINES = 240


def slow_provider(sim_url: str) -> list[dict[str, Any]]:
    entry = sim_provider("slow", "openai", sim_url, [model("slow-m", aliases=["chat"])], rpm=RPM)
    return [{**entry, "timeout_s": 60}]


def test_one_default_worker_keeps_rate_times_latency_in_flight(batch_farm: BatchFarm) -> None:
    farm = batch_farm(
        providers_fn=slow_provider,
        sim_overrides={"latency_ms": ANSWER_S * 1000},
        workers=0,
        processes=1,
        concurrency=None,  # the default worker: no --concurrency
    )
    base = Settings.model_fields["worker_concurrency"].default
    paced = RPM / 60 * (1 - PACING_MARGIN)
    little = paced * ANSWER_S  # calls in flight that keep the provider busy
    assert little > 2 * base  # what a worker stuck at its starting slots could not do
    with farm.client() as http:
        file_id = upload(http, jsonl([chat_line(f"q{i}", f"question {i}") for i in range(LINES)]))
        batch = create(http, file_id, window="60s")
        done = wait_for(http, batch["id"], timeout_s=60)
    assert done["status"] == "completed"
    assert done["request_counts"] == {"total": LINES, "completed": LINES, "failed": 0}
    stats = farm.sim_stats()["providers"]["slow"]
    assert stats["accepted"] == LINES  # no call sent twice
    assert stats["rate_limited"] == 0
    # The lines sent in the first 10 s were all out at once: rate x latency (196 when the
    # feeder keeps its pace exactly; a loaded box lags it: 133 beside three other test
    # processes). A worker stuck at its starting slots never has more than 64 out.
    assert stats["max_in_flight"] >= 1.5 * base, stats
