"""The estimate of a token-bound batch, before and after the farm learned its token costs.

One provider allows 600 requests but only 6,000 tokens a minute (counted on the answers'
real usage), and each line asks for up to 50 tokens of output. The estimate must be bound by
tokens, not requests; once a batch ran, it must count the output the answers really used
(the caller's usage) instead of ``max_tokens``, and land near the duration the batch took.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from relay_core.batch.client.demand import route_demand
from relay_core.limits.plan import PACING_MARGIN
from tests.integration.batch import conftest as b
from tests.integration.batch.conftest import BatchFarm
from tests.support.farm import model, sim_provider

RPM, TPM, LINES, MAX_TOKENS = 600, 6000, 24, 50


def token_bound(sim_url: str) -> list[dict[str, Any]]:
    limits = {"rpm": RPM, "tpm": TPM}
    tok = sim_provider("tok", "openai", sim_url, [model("tok-m", aliases=["chat"])], **limits)
    return [{**tok, "tpm_counting": "usage"}]  # charged on real usage: learning pays


def ask(http: httpx.Client, file: Path) -> dict[str, Any]:
    requests = [c.model_dump(exclude_none=True) for c in route_demand(file, None)]
    r = http.post("/v1/batches/estimate", json={"requests": requests})
    assert r.status_code == 200, r.text
    est: dict[str, Any] = r.json()
    return est


def test_a_token_bound_estimate_uses_tpm_then_the_learned_output(
    batch_farm: BatchFarm, tmp_path: Path
) -> None:
    farm = batch_farm(
        providers_fn=token_bound, sim_overrides={"tpm_counting": "usage", "latency_ms": 5}
    )
    lines = [b.chat_line(f"q{i}", f"question {i}", max_tokens=MAX_TOKENS) for i in range(LINES)]
    file = tmp_path / "in.jsonl"
    file.write_bytes(b.jsonl(lines))
    with farm.client() as http:
        before = ask(http, file)
        (target,) = before["targets"]
        assert target["binding"] == "tpm"
        by_requests = LINES / (RPM / 60 * (1 - PACING_MARGIN))
        assert before["estimated_seconds"] > 3 * by_requests  # tokens bind, not requests
        assert target["tokens_per_line"] > MAX_TOKENS  # the prompt plus the whole cap

        started = time.monotonic()
        batch = b.create(http, b.upload(http, file.read_bytes()), window="120s")
        done = b.wait_for(http, batch["id"], timeout_s=90)
        took = time.monotonic() - started
        assert done["request_counts"]["completed"] == LINES

        deadline = time.monotonic() + 10
        after = ask(http, file)
        while after["targets"][0]["tokens_per_line"] == target["tokens_per_line"]:
            assert time.monotonic() < deadline, "the usage of the batch was never learned"
            time.sleep(0.1)  # polling a condition (the workers' usage flush), bounded
            after = ask(http, file)
        # The first run paced itself on the costs it was still learning; a second run of the
        # same file goes at the learned cost, which the new estimate must predict.
        started = time.monotonic()
        again = b.create(http, b.upload(http, file.read_bytes()), window="120s")
        assert b.wait_for(http, again["id"], timeout_s=90)["request_counts"]["completed"] == LINES
        took = time.monotonic() - started
    learned = after["targets"][0]
    assert learned["binding"] == "tpm"
    assert learned["tokens_per_line"] < target["tokens_per_line"]  # the answers used less
    assert after["estimated_seconds"] < before["estimated_seconds"]
    # In a wide band around what the batch took (the box is shared: not a timing test).
    assert took / 3 < after["estimated_seconds"] < took * 3, (took, after, before)
