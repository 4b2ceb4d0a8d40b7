"""A provider that enforces less than it publishes costs a few 429s, not a stream of them
(issue 13, item 4): Relay lowers the rate it paces that provider at, for every worker."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.batch.conftest import BatchFarm, chat_line, create, jsonl, upload, wait_for
from tests.support.farm import model, sim_provider

pytestmark = pytest.mark.integration

LINES = 200


def published(sim_url: str) -> list[dict[str, Any]]:
    """One provider whose catalogue entry says 1,200 RPM."""
    return [sim_provider("a", "openai", sim_url, [model("a-m", aliases=["chat"])], rpm=1200)]


def test_a_hidden_limit_is_learned_after_a_few_429s(batch_farm: BatchFarm) -> None:
    farm = batch_farm(published)
    # It really allows 30 % of that (6 a second), counted per second.
    farm.sim("a", rpm=360, window_s=1)
    lines = [chat_line(f"h{i}", f"q{i}") for i in range(LINES)]
    with farm.client() as http:
        batch = create(http, upload(http, jsonl(lines)))
        final = wait_for(http, batch["id"], timeout_s=120)
    assert final["status"] == "completed"
    assert final["request_counts"] == {"total": LINES, "completed": LINES, "failed": 0}
    refused = farm.sim_stats()["providers"]["a"]["rate_limited"]
    # Measured on this box: 21 with the learned rate, 33 without (the 429s' pauses alone).
    assert refused <= LINES * 0.15, refused
    learned = farm.redis.hgetall(f"{farm.settings.key('limits')}:a:learned")
    assert 0.1 <= float(learned[b"base"]) < 0.5
