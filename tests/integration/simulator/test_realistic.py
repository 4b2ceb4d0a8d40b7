"""Providers that behave like real ones: answer time that grows with the output, TPM counted
by reservation or by usage, hidden limits, and the binding ceiling a run reports.

Times are the simulator's planned answer times (``ceiling.mean_answer_s`` in the stats), never
a wall clock; windows move on the module's fake clock.
"""

from __future__ import annotations

from typing import Any

import pytest

from relay_sim import pooled_ceiling
from tests.integration.simulator.support import openai, patched, sse, stats


def _ceiling(http, provider: str) -> dict[str, Any]:
    ceiling: dict[str, Any] = stats(http, provider)["ceiling"]
    return ceiling


def test_answer_time_grows_with_the_output_and_a_stream_spreads_it(http):
    # "sim:olt/m1: " + 80 characters = 92 characters = 23 tokens: 5 ms + 23 x 1 ms
    assert openai(http, "olt", "x" * 80).status_code == 200
    assert _ceiling(http, "olt")["mean_answer_s"] == pytest.approx(0.028)
    streamed = openai(http, "olt", "x" * 80, stream=True)
    assert "content-length" not in streamed.headers  # paced: sent frame by frame
    chunks = [d for _, d in sse(streamed.text) if d != "[DONE]"]
    assert len(chunks) > 10
    assert _ceiling(http, "olt")["mean_answer_s"] == pytest.approx(0.028)
    # 12 + 400 characters = 103 tokens: 108 ms
    assert openai(http, "olt", "x" * 400).status_code == 200
    assert _ceiling(http, "olt")["mean_answer_s"] == pytest.approx((0.028 * 2 + 0.108) / 3)


def test_reserve_counting_charges_max_tokens_at_admission(http):
    # "hi" is 1 prompt token; + max_tokens 50 = 51 of 100 per minute
    assert openai(http, "tpm-reserve", "hi", max_tokens=50).status_code == 200
    refused = openai(http, "tpm-reserve", "hi", max_tokens=50)
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "tokens"


def test_usage_counting_charges_the_answer_actually_produced(http):
    # 1 prompt token + "sim:tpm-usage/m1: hi" (5 tokens): 6 of 100, whatever max_tokens says
    replies = [openai(http, "tpm-usage", "hi", max_tokens=50) for _ in range(10)]
    assert {r.status_code for r in replies} == {200}
    assert replies[-1].headers["x-ratelimit-remaining-tokens"] == str(100 - 9 * 6 - 1)
    assert _ceiling(http, "tpm-usage")["mean_tokens"] == 6


def test_usage_counting_refuses_once_the_answers_fill_the_window(http):
    # 50 prompt tokens fit at admission; the 50-token answer then fills the 100
    assert openai(http, "tpm-usage-long", "y" * 200, max_tokens=50).status_code == 200
    refused = openai(http, "tpm-usage-long", "y" * 200, max_tokens=50)
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "tokens"
    assert "Limit 100, Used 100, Requested 50" in refused.json()["error"]["message"]


def test_a_hidden_limit_refuses_at_60_percent_while_headers_state_the_published_one(http):
    with patched(http, "hidden", hidden_factor=0.6):  # 600 RPM, per second: 10 published, 6 kept
        replies = [openai(http, "hidden", f"q{i}") for i in range(6)]
        assert {r.status_code for r in replies} == {200}
        assert replies[-1].headers["x-ratelimit-limit-requests"] == "10"
        assert replies[-1].headers["x-ratelimit-remaining-requests"] == "4"
        assert replies[-1].headers["x-ratelimit-limit-tokens"] == "1000"
        refused = openai(http, "hidden", "q6")
        assert refused.status_code == 429
        assert refused.headers["x-ratelimit-limit-requests"] == "10"
        assert "Limit 10, Used 6, Requested 1" in refused.json()["error"]["message"]
        ceiling = _ceiling(http, "hidden")
        assert (ceiling["binding"], ceiling["lines_allowed"]) == ("rpm", 6)  # the enforced one
    assert openai(http, "hidden", "q7").status_code == 200  # unpatched: 10 again, windows anew


def test_the_ceiling_names_rpm_or_tpm_and_the_pooled_ceiling_sums_them(http, clock):
    for provider in ("c-rpm", "c-tpm"):
        # c-rpm: 2 requests a second; c-tpm: 20 tokens a second, 10 a request (1 + 9)
        codes = [openai(http, provider, "hi", max_tokens=9).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
    clock.now += 4.5
    for provider in ("c-rpm", "c-tpm"):
        assert openai(http, provider, "hi", max_tokens=9).status_code == 200
    rpm, tpm = _ceiling(http, "c-rpm"), _ceiling(http, "c-tpm")
    assert (rpm["binding"], rpm["scope"], rpm["span_s"]) == ("rpm", None, pytest.approx(4.5))
    assert rpm["lines_allowed"] == 2 * 5  # a budget per window begun, the first one included
    assert rpm["requests_per_s"] == pytest.approx(10 / 4.5)
    assert tpm["binding"] == "tpm"
    assert tpm["mean_tokens"] == 10
    assert tpm["lines_allowed"] == pytest.approx(20 * 5 / 10)
    pool = pooled_ceiling(http.get("/_sim/stats").json(), names=["c-rpm", "c-tpm"])
    assert pool.lines_allowed == pytest.approx(20)
    assert pool.requests_per_s == pytest.approx(20 / 4.5)
    assert pool.share() == pytest.approx(6 / 20)


def test_the_ceiling_of_a_daily_capped_provider_is_its_cap(http, clock):
    codes = [openai(http, "c-rpd", f"q{i}").status_code for i in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    clock.now += 10
    assert openai(http, "c-rpd", "later").status_code == 429  # still the same day
    ceiling = _ceiling(http, "c-rpd")
    assert (ceiling["binding"], ceiling["lines_allowed"]) == ("rpd", 3)
    assert ceiling["requests_per_s"] == pytest.approx(0.3)


def test_the_ceiling_of_a_concurrency_capped_provider_is_concurrency_over_latency(http, clock):
    for _ in range(2):
        assert openai(http, "c-conc", "hi").status_code == 200
        clock.now += 5
    assert openai(http, "c-conc", "hi").status_code == 200
    ceiling = _ceiling(http, "c-conc")
    assert ceiling["mean_answer_s"] == pytest.approx(0.02)
    assert ceiling["binding"] == "concurrency"
    assert ceiling["lines_allowed"] == pytest.approx(2 * 10 / 0.02)
    assert ceiling["requests_per_s"] == pytest.approx(100)


def test_a_model_limit_binds_through_its_share_of_the_requests(http, clock):
    codes = [openai(http, "c-model", f"q{i}").status_code for i in range(4)]
    assert codes == [200, 429, 429, 429]  # m1: 60 RPM, per second 1
    codes = [openai(http, "c-model", f"q{i}", model="m2").status_code for i in range(4)]
    assert codes == [200] * 4
    clock.now += 3
    assert openai(http, "c-model", "later").status_code == 200
    ceiling = stats(http, "c-model")["ceiling"]
    assert (ceiling["binding"], ceiling["scope"]) == ("rpm", "m1")
    assert ceiling["lines_allowed"] == pytest.approx(1 * 4 / (5 / 9))  # m1 took 5 of the 9
    assert stats(http, "c-model")["models"]["m1"]["ceiling"]["lines_allowed"] == 4
