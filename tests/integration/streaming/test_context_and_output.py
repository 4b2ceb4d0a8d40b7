"""Context fitting per candidate model, and the output normalizer, through the farm."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.streaming.support import stream
from tests.support.farm import FarmFactory, model, sim_provider

pytestmark = pytest.mark.integration

TURN = "Tell me about the trains between Vienna and Venice, and the hotels near the station. "


def windows(sim_url: str) -> list[dict[str, Any]]:
    """``small`` (a 600-token window, ranked first) and ``large``, both serving "chat"."""
    small = sim_provider("small", "openai", sim_url, [model("s-m", aliases=["chat"])])
    large = sim_provider("large", "openai", sim_url, [model("l-m", aliases=["chat"])])
    small["models"][0]["context_window"] = 600
    large["models"][0]["context_window"] = 100_000
    small["weight"] = 100
    return [small, large]


def conversation(turns: int, last: str = "Which one first?") -> list[dict[str, str]]:
    messages = [{"role": "system", "content": "You are a travel agent."}]
    for i in range(turns):
        messages.append({"role": "user", "content": f"{i}: {TURN * 2}"})
        messages.append({"role": "assistant", "content": f"{i}: {TURN * 2}"})
    return [*messages, {"role": "user", "content": last}]


def prompt_tokens(farm: Any, provider: str) -> int:
    tokens: int = farm.sim_stats()["providers"][provider]["prompt_tokens"]
    return tokens


def test_each_candidate_gets_the_conversation_fitted_to_its_window(
    make_farm: FarmFactory,
) -> None:
    farm = make_farm(windows)
    body = {"messages": conversation(30), "max_tokens": 50}
    with farm.client() as http:
        small = http.post("/v1/chat/completions", json={**body, "model": "chat"})
        large = http.post("/v1/chat/completions", json={**body, "model": "large/l-m"})
    assert small.status_code == 200 and large.status_code == 200, small.text + large.text
    assert small.headers["x-relay-provider"] == "small"
    for r in (small, large):
        assert r.json()["choices"][0]["message"]["content"].endswith(": Which one first?")
    assert prompt_tokens(farm, "small") < 600 - 50  # trimmed to fit the small window
    assert prompt_tokens(farm, "large") > 2500  # the whole conversation


@pytest.mark.parametrize("mode", ["static", "dynamic", "reservoir", "adaptive"])
def test_every_mode_fits_the_small_window(make_farm: FarmFactory, mode: str) -> None:
    farm = make_farm(windows, context_static_messages=4)
    body = {"model": "small/s-m", "messages": conversation(30), "context_mode": mode}
    with farm.client() as http:
        r = http.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    assert 0 < prompt_tokens(farm, "small") < 600


def test_a_conversation_too_long_for_a_window_skips_that_candidate(
    make_farm: FarmFactory,
) -> None:
    farm = make_farm(windows)
    long_last = TURN * 30  # about 500 tokens: over the small model's budget (402) alone
    with farm.client() as http:
        r = http.post(
            "/v1/chat/completions", json={"model": "chat", "messages": conversation(2, long_last)}
        )
        off = http.post(
            "/v1/chat/completions",
            json={"model": "chat", "messages": conversation(30), "context_mode": "off"},
        )
    assert r.status_code == 200 and r.headers["x-relay-provider"] == "large"
    assert off.status_code == 200 and off.headers["x-relay-provider"] == "large"
    assert r.headers["x-relay-attempts"] == "1"
    assert farm.sim_stats()["providers"]["small"]["requests"] == 0  # never sent over-long


def test_too_long_for_every_candidate_is_a_clear_400(make_farm: FarmFactory) -> None:
    farm = make_farm(windows)
    huge = TURN * 5000
    with farm.client() as http:
        r = http.post(
            "/v1/chat/completions", json={"model": "chat", "messages": conversation(0, huge)}
        )
        s = stream(http, {"model": "chat", "messages": conversation(0, huge)})
    assert r.status_code == s.status == 400  # streamed or not, refused before queueing
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and err["param"] == "messages"
    assert err["code"] == "context_length_exceeded"  # OpenAI's code: clients branch on it
    assert "l-m" in err["message"] and "context window" in err["message"]
    assert sum(p["requests"] for p in farm.sim_stats()["providers"].values()) == 0


JSON_FORMAT = {"type": "json_object"}
FENCED = '\n```json\n{"city": "Venice", "nights": 2}\n```\nEnjoy!'


@pytest.mark.parametrize("streaming", [False, True], ids=["whole", "stream"])
def test_json_is_taken_out_of_its_fence_when_json_was_asked(
    make_farm: FarmFactory, streaming: bool
) -> None:
    # A model that answers prose around the JSON (the simulator answers JSON otherwise).
    farm = make_farm(windows, sim_overrides={"chunk_chars": 5, "invalid_json_rate": 1.0})
    body = {
        "model": "large/l-m",
        "messages": [{"role": "user", "content": FENCED}],
        "response_format": JSON_FORMAT,
    }
    with farm.client() as http:
        if streaming:
            r = stream(http, body)
            content = r.text
        else:
            content = http.post("/v1/chat/completions", json=body).json()["choices"][0]["message"][
                "content"
            ]
    assert content.strip() == '{"city": "Venice", "nights": 2}'


@pytest.mark.parametrize("enabled", [False, True], ids=["off", "on"])
@pytest.mark.parametrize("streaming", [False, True], ids=["whole", "stream"])
def test_an_open_code_block_is_closed_when_normalizing(
    make_farm: FarmFactory, enabled: bool, streaming: bool
) -> None:
    farm = make_farm(windows, normalize_output=enabled, sim_overrides={"chunk_chars": 3})
    body = {"model": "large/l-m", "messages": [{"role": "user", "content": "\n```py\n\n\nx = 1"}]}
    with farm.client() as http:
        if streaming:
            content = stream(http, body).text
        else:
            content = http.post("/v1/chat/completions", json=body).json()["choices"][0]["message"][
                "content"
            ]
    raw = "sim:large/l-m: \n```py\n\n\nx = 1"
    assert content == (raw + "\n```" if enabled else raw)
