"""Failures the *request* causes never count against the provider (issue 14, item 1).

The simulator plays llama.cpp's server: a 500 for valid requests it cannot handle
(``fails_on``), and a 200 with an empty stream for a streamed prompt over its window
(``empty_stream_over_window``). One client sending such requests must not open the breaker
and lock every other client out.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.integration.streaming.support import stream
from tests.support.farm import FarmFactory, model, sim_provider

pytestmark = pytest.mark.integration

WINDOW = 1_000
STRUCTURED = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}


def ask(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "chat", "messages": [{"role": "user", "content": text}], **extra}


def agent_turn(text: str) -> dict[str, Any]:
    """An agent loop's second turn: the assistant's tool call has ``content: null``."""
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    return {
        "model": "chat",
        "messages": [
            {"role": "user", "content": text},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": "42"},
        ],
    }


def llama(sim_url: str) -> list[dict[str, Any]]:
    quirky = sim_provider(
        "llama", "openai", sim_url, [model("smol", aliases=["chat"], context_window=WINDOW)]
    )
    return [quirky]


def stats(farm: Any) -> dict[str, Any]:
    data: dict[str, Any] = farm.sim_stats()["providers"]["llama"]
    return data


def test_a_client_whose_requests_the_server_cannot_handle_locks_nobody_out(
    make_farm: FarmFactory,
) -> None:
    farm = make_farm(llama, breaker_failures=2, breaker_min_calls=2)
    farm.sim("llama", fails_on=["json_schema", "null_content"])
    good: list[int] = []
    bad: list[Any] = []
    with farm.client() as http:
        good.append(http.post("/v1/chat/completions", json=ask("hello")).status_code)
        for i in range(6):
            bad.append(
                http.post("/v1/chat/completions", json=ask(f"s{i}", response_format=STRUCTURED))
            )
            bad.append(http.post("/v1/chat/completions", json=agent_turn(f"t{i}")))
            good.append(http.post("/v1/chat/completions", json=ask(f"g{i}")).status_code)
    assert good == [200] * 7  # the breaker never opened
    for r in bad:
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert "llama answered HTTP 500" in error["message"]  # the upstream's error, named
    assert "'schema'" in bad[0].json()["error"]["message"]
    assert "NoneType" in bad[1].json()["error"]["message"]
    # Each refused request was tried twice on llama (the same way twice), and no more.
    assert stats(farm)["errors"] == 2 * len(bad)


def test_an_empty_stream_for_a_prompt_near_the_window_is_the_requests_fault(
    make_farm: FarmFactory,
) -> None:
    farm = make_farm(llama, breaker_failures=1, breaker_min_calls=1)
    # The server counts 1.5x the tokens Relay estimates: the prompt fits by Relay's count,
    # and is over the window by the server's, which streams nothing back.
    farm.sim(
        "llama",
        models=[{"id": "smol", "aliases": ["chat"], "context_window": WINDOW}],
        token_density=1.5,
        empty_stream_over_window=True,
    )
    long_prompt = " ".join(["word"] * 800)  # 800 tokens by Relay's count, 1,500 by the server's
    with farm.client() as http:
        empty = stream(http, ask(long_prompt, max_tokens=20))
        after = http.post("/v1/chat/completions", json=ask("still there?"))
    assert stats(farm)["empty_streams"] == 1, (empty.status, empty.body, stats(farm))
    assert empty.status == 400, empty.body
    error = orjson.loads(empty.body)["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", "messages")
    assert "near its 1,000-token window" in error["message"]
    assert after.status_code == 200, after.text  # one empty stream did not open the breaker
