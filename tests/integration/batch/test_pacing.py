"""Pacing that knows every limit (issue 13, item 2), end to end: a real farm and the simulator.

* A TPM-bound provider that counts usage, whose answers stop far short of ``max_tokens``, is
  filled by what its lines really cost (learned from their usage), far beyond what reserving
  ``max_tokens`` would allow, without drawing 429s.
* A daily cap is spent evenly over the time the batch has, not burnt in its first seconds.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.batch.conftest import BatchFarm, chat_line, create, jsonl, upload, wait_for
from tests.support.farm import model, sim_provider

pytestmark = pytest.mark.integration

TPM = 6000  # 100 tokens a second, counted per second
MAX_TOKENS = 200
LINES = 60


def usage_counted(sim_url: str) -> list[dict[str, Any]]:
    entry = sim_provider(
        "a", "openai", sim_url, [model("a-m", aliases=["chat"])], rpm=6000, tpm=TPM
    )
    return [{**entry, "tpm_counting": "usage"}]


def test_a_tpm_bound_provider_is_filled_by_what_its_lines_really_cost(
    batch_farm: BatchFarm,
) -> None:
    # Answers take a second: a reservation is held that long before its usage settles it.
    farm = batch_farm(usage_counted, sim_overrides={"window_s": 1, "latency_ms": 1000})
    lines = [chat_line(f"t{i}", f"q{i}", max_tokens=MAX_TOKENS) for i in range(LINES)]
    with farm.client() as http:
        batch = create(http, upload(http, jsonl(lines)))
        final = wait_for(http, batch["id"], timeout_s=120)
    assert final["request_counts"] == {"total": LINES, "completed": LINES, "failed": 0}
    stats = farm.sim_stats()["providers"]["a"]
    span = stats["ceiling"]["span_s"]
    per_s = TPM / 60
    # Reserving max_tokens, the provider would take at most this many lines in the span.
    by_max_tokens = per_s * (span + 1) / MAX_TOKENS
    assert stats["accepted"] >= 4 * by_max_tokens, (stats["accepted"], by_max_tokens)
    # The tokens it admitted stayed within its limit, and it hardly ever said no.
    assert stats["total_tokens"] <= per_s * (span + 1)
    assert stats["ceiling"]["binding"] == "tpm"
    assert stats["rate_limited"] <= LINES * 0.05, stats["rate_limited"]


CAP = 20


def daily_capped(sim_url: str) -> list[dict[str, Any]]:
    return [
        sim_provider("a", "openai", sim_url, [model("a-m", aliases=["chat"])], rpm=600, rpd=CAP)
    ]


def test_a_daily_cap_is_spread_over_the_batchs_window_not_burnt_at_the_start(
    batch_farm: BatchFarm,
) -> None:
    farm = batch_farm(daily_capped)
    window_s = 8
    lines = [chat_line(f"d{i}", f"q{i}") for i in range(CAP + 10)]
    with farm.client() as http:
        batch = create(http, upload(http, jsonl(lines)), window=f"{window_s}s")
        final = wait_for(http, batch["id"], timeout_s=60)
    # The cap allowed CAP lines today; the rest expired with the window. Spread to the
    # window's end, the last one or two may not be back in time on a loaded box (18 seen).
    assert final["status"] == "expired"
    completed = final["request_counts"]["completed"]
    assert CAP - 3 <= completed <= CAP
    stats = farm.sim_stats()["providers"]["a"]
    assert completed <= stats["accepted"] <= CAP  # never past the cap
    assert stats["rate_limited"] == 0
    # At 600 RPM the cap would be gone in two seconds; spread, it lasts most of the window.
    assert stats["ceiling"]["span_s"] >= window_s / 2, stats["ceiling"]
