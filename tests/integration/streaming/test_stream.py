"""``stream: true`` through the farm: OpenAI's chunk format for every API family, failover
before the first chunk, an error event after it, and client disconnects."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.integration.farm.conftest import FAMILIES
from tests.integration.streaming.support import ask, stream
from tests.support.farm import FarmFactory, model, sim_provider

pytestmark = pytest.mark.integration

WEATHER_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
}


@pytest.mark.parametrize("name", [n for n, _ in FAMILIES])
def test_each_family_streams_openai_chunks(make_farm: FarmFactory, name: str) -> None:
    farm = make_farm()
    with farm.client() as http:
        r = stream(http, ask("stream me please", f"{name}/{name}-m"))
    assert r.status == 200, r.body
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["x-relay-provider"] == name
    chunks = r.chunks
    assert r.events[-1].data == "[DONE]"
    assert {c["id"] for c in chunks} == {r.headers["x-request-id"]}
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert {c["model"] for c in chunks} == {f"{name}-m"}
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all("usage" not in c for c in chunks)  # not asked for: no usage chunk, no field
    assert [c["choices"][0]["finish_reason"] for c in chunks][-1] == "stop"
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
    assert r.text == f"sim:{name}/{name}-m: stream me please"


@pytest.mark.parametrize("name", [n for n, _ in FAMILIES])
def test_usage_chunk_comes_last_when_asked(make_farm: FarmFactory, name: str) -> None:
    farm = make_farm()
    body = ask("count me", f"{name}/{name}-m", stream_options={"include_usage": True})
    with farm.client() as http:
        r = stream(http, body)
    assert r.status == 200, r.body
    *rest, last = r.chunks
    assert last["choices"] == []
    usage = last["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    assert all(c["usage"] is None for c in rest)  # OpenAI's shape: null until the last one


@pytest.mark.parametrize("name", [n for n, _ in FAMILIES])
def test_tool_call_deltas_stream(make_farm: FarmFactory, name: str) -> None:
    farm = make_farm()
    body = ask("[call:get_weather] in Paris?", f"{name}/{name}-m", tools=[WEATHER_TOOL])
    with farm.client() as http:
        r = stream(http, body)
    assert r.status == 200, r.body
    calls = [tc for c in r.chunks for tc in c["choices"][0]["delta"].get("tool_calls") or []]
    assert calls[0]["function"]["name"] == "get_weather"
    assert calls[0]["id"] and calls[0]["type"] == "function"
    assert "".join(tc["function"].get("arguments", "") for tc in calls) == "{}"
    assert r.chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def two_providers(sim_url: str) -> list[dict[str, Any]]:
    """``a`` (weight 100: ranked first while healthy, 0.5 s timeout) and ``b``."""
    a = sim_provider("a", "openai", sim_url, [model("a-m", aliases=["chat"])])
    b = sim_provider("b", "anthropic", sim_url, [model("b-m", aliases=["chat"])])
    a["weight"], a["timeout_s"] = 100, 0.5
    return [a, b]


@pytest.mark.parametrize(
    "fault", [{"outage": True}, {"garbage": True}, {"hang": True}], ids=["503", "garbage", "hang"]
)
def test_failure_before_the_first_chunk_fails_over(
    make_farm: FarmFactory, fault: dict[str, Any]
) -> None:
    farm = make_farm(two_providers)
    farm.sim("a", **fault)
    with farm.client() as http:
        r = stream(http, ask("fail over"))
    assert r.status == 200, r.body
    assert r.headers["x-relay-provider"] == "b"
    assert r.headers["x-relay-attempts"] == "2"
    assert r.text == "sim:b/b-m: fail over"
    assert r.events[-1].data == "[DONE]"
    assert not [e for e in r.events if e.event == "error"]


def test_no_candidate_left_is_a_plain_error_response(make_farm: FarmFactory) -> None:
    farm = make_farm(two_providers)
    farm.sim("a", outage=True)
    farm.sim("b", outage=True)
    with farm.client() as http:
        r = stream(http, ask("nobody home"))
    assert r.status == 503
    assert r.headers["content-type"] == "application/json"
    assert "upstream_unavailable" in r.body.decode()


def test_failure_after_the_first_chunk_is_an_error_event_then_done(
    make_farm: FarmFactory,
) -> None:
    # a's stream stops half-way through its answer: the connection drops.
    farm = make_farm(two_providers)
    farm.sim("a", truncate=True)
    with farm.client() as http:
        r = stream(http, ask("this will break mid-way, some way into a longer answer"))
    assert r.status == 200
    assert r.headers["x-relay-provider"] == "a"
    error, done = r.events[-2:]
    assert done.data == "[DONE]"
    assert error.event == "error"
    assert error.json()["error"]["code"] == "upstream_unavailable", error.data
    assert r.chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert any(c["choices"][0]["delta"].get("content") for c in r.chunks if c["choices"])
    assert farm.sim_stats()["providers"]["b"]["requests"] == 0  # too late to fail over


def test_a_stall_before_any_content_still_fails_over(make_farm: FarmFactory) -> None:
    # a sends its role chunk at once, then pauses 1.5 s (past its 0.5 s read timeout) before
    # its first piece of the answer: the role chunk was held back, nothing reached the client.
    farm = make_farm(two_providers)
    farm.sim("a", chunk_delay_ms=1500)
    with farm.client() as http:
        r = stream(http, ask("this will stall before it says anything"))
    assert r.status == 200
    assert r.headers["x-relay-provider"] == "b"
    assert r.events[-1].data == "[DONE]"
    assert not [e for e in r.events if e.event == "error"]
    assert farm.sim_stats()["providers"]["a"]["requests"] == 1


def slow_provider(sim_url: str) -> list[dict[str, Any]]:
    p = sim_provider("slow", "openai", sim_url, [model("slow-m")], concurrency=1)
    return [p]


def test_client_disconnect_cancels_upstream_and_frees_the_slot(make_farm: FarmFactory) -> None:
    # 80 chunks 100 ms apart: eight seconds of answer, and room for one call at a time.
    farm = make_farm(slow_provider, sim_overrides={"chunk_chars": 1})
    farm.sim("slow", chunk_delay_ms=100)
    long_question = "x" * 60
    with farm.client() as http:
        body = {**ask(long_question, "slow/slow-m"), "stream": True}
        with http.stream("POST", "/v1/chat/completions", json=body) as r:
            assert r.status_code == 200
            first = next(r.iter_raw())
            assert b"chat.completion.chunk" in first
        started = time.monotonic()
        # The slot is free again at once: a second call is answered without waiting 8 s.
        again = http.post("/v1/chat/completions", json=ask("next", "slow/slow-m"))
        elapsed = time.monotonic() - started
    assert again.status_code == 200, again.text
    assert elapsed < 3.0
    deadline = time.monotonic() + 5
    while farm.sim_stats()["providers"]["slow"]["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.05)  # polling a condition, bounded by the deadline
    stats = farm.sim_stats()["providers"]["slow"]
    assert stats["in_flight"] == 0  # the upstream stream was closed, not read to its end
    assert stats["max_in_flight"] == 1
