"""``GET /v1/usage``: per day, provider, model and gateway key, from the workers' counters."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.integration.streaming.support import ask, stream
from tests.security.support import Recorder
from tests.support.farm import FarmFactory, model, sim_provider

pytestmark = pytest.mark.integration


def pair(sim_url: str) -> list[dict[str, Any]]:
    a = sim_provider("a", "openai", sim_url, [model("a-m", aliases=["chat"])])
    b = sim_provider("b", "gemini", sim_url, [model("b-m", aliases=["chat"])])
    a["weight"] = 100
    return [a, b]


def today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def rows(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{r['provider']}/{r['model']}": r for r in data["data"]}


def usage_when(http: Any, requests: int, **params: Any) -> dict[str, Any]:
    """The usage once ``requests`` calls are counted (a call is counted just after its reply
    is sent, off the latency path), within a deadline."""
    deadline = time.monotonic() + 5
    while True:
        data: dict[str, Any] = http.get("/v1/usage", params=params).json()
        if data["totals"]["requests"] >= requests or time.monotonic() > deadline:
            return data
        time.sleep(0.02)  # polling a condition, bounded by the deadline


def test_usage_counts_requests_tokens_errors_and_429s(make_farm: FarmFactory) -> None:
    farm = make_farm(pair, max_attempts=2)
    with farm.client() as http:
        ok = http.post("/v1/chat/completions", json=ask("one"))
        streamed = stream(http, ask("two", stream_options={"include_usage": True}))
        farm.sim("a", outage=True)
        failed_over = http.post("/v1/chat/completions", json=ask("three"))
        farm.sim("a", outage=False)
        limited = http.post("/v1/chat/completions", json=ask("[sim:429] four", "a/a-m"))
        sim = farm.sim_stats()["providers"]
        calls = sum(sim[p]["requests"] for p in ("a", "b"))
        usage = usage_when(http, calls)
    assert ok.status_code == 200 and streamed.status == 200 and failed_over.status_code == 200
    assert limited.status_code == 429
    by = rows(usage)
    a, b = by["a/a-m"], by["b/b-m"]
    assert a["date"] == b["date"] == today()
    # Every upstream call is counted, on the provider that took it: two answers and one
    # failure (the outage) on a, then two 429s (the request and its one retry).
    assert (a["requests"], a["errors"], a["rate_limited"]) == (5, 3, 2)
    assert a["requests"] == sim["a"]["requests"]
    assert a["rate_limited"] == sim["a"]["rate_limited"]
    assert (b["requests"], b["errors"], b["rate_limited"]) == (1, 0, 0)
    assert a["prompt_tokens"] == sim["a"]["prompt_tokens"] > 0
    assert a["completion_tokens"] == sim["a"]["completion_tokens"] > 0
    assert b["total_tokens"] == sim["b"]["total_tokens"] > 0
    assert usage["totals"]["requests"] == 6
    assert usage["owner"] == "anonymous"


def test_usage_filters_by_date_provider_and_model(make_farm: FarmFactory) -> None:
    farm = make_farm(pair)
    with farm.client() as http:
        http.post("/v1/chat/completions", json=ask("a please", "a/a-m"))
        http.post("/v1/chat/completions", json=ask("b please", "b/b-m"))
        usage_when(http, 2)
        only_b = http.get("/v1/usage", params={"provider": "b"}).json()
        only_model = http.get("/v1/usage", params={"model": "a-m", "date": today()}).json()
        yesterday = http.get("/v1/usage", params={"date": "2001-01-01"}).json()
        bad = http.get("/v1/usage", params={"date": "yesterday"})
    assert list(rows(only_b)) == ["b/b-m"]
    assert list(rows(only_model)) == ["a/a-m"]
    assert yesterday["data"] == [] and yesterday["totals"]["requests"] == 0
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "date"


def test_each_gateway_key_sees_only_its_own_usage(make_farm: FarmFactory) -> None:
    farm = make_farm(pair, api_keys="key-one,key-two")
    one = {"Authorization": "Bearer key-one"}
    two = {"Authorization": "Bearer key-two"}
    with farm.client() as http:
        for _ in range(3):
            assert http.post("/v1/chat/completions", json=ask("x"), headers=one).status_code == 200
        assert http.post("/v1/chat/completions", json=ask("y"), headers=two).status_code == 200
        http.headers.update(one)
        usage_one = usage_when(http, 3)
        http.headers.update(two)
        usage_two = usage_when(http, 1)
        del http.headers["authorization"]
        anonymous = http.get("/v1/usage")
    assert usage_one["totals"]["requests"] == 3
    assert usage_two["totals"]["requests"] == 1
    assert usage_one["owner"] != usage_two["owner"]
    assert anonymous.status_code == 401


def test_an_upstream_without_stream_usage_gets_a_marked_capped_estimate(
    make_farm: FarmFactory,
) -> None:
    # llama.cpp's server sent no usage: Relay's include_usage chunk said 25 completion tokens
    # for max_tokens 20, unmarked, and /v1/usage counted it as the provider's figure.
    def one(sim_url: str) -> list[dict[str, Any]]:
        return [sim_provider("a", "openai", sim_url, [model("a-m", aliases=["chat"])])]

    farm = make_farm(one, sim_overrides={"stream_usage": False, "chunk_chars": 2})
    words = "one two three four five six seven eight nine ten " * 4
    with farm.client() as http:
        body = ask(words, max_tokens=20, stream_options={"include_usage": True})
        streamed = stream(http, body)
        usage = usage_when(http, 1)
    assert streamed.status == 200
    last = streamed.chunks[-1]
    assert last["choices"] == []
    reported = last["usage"]
    assert reported["estimated"] is True
    assert 0 < reported["completion_tokens"] <= 20
    assert reported["total_tokens"] == reported["prompt_tokens"] + reported["completion_tokens"]
    row = rows(usage)["a/a-m"]
    assert row["estimated_tokens"] == row["total_tokens"] > 0
    assert usage["totals"]["estimated_tokens"] == row["estimated_tokens"]


def test_an_answer_without_usage_is_marked_estimated_in_a_header(make_farm: FarmFactory) -> None:
    def no_usage(_: Request, __: bytes) -> Response:
        answer = {"role": "assistant", "content": "one two three four five six seven eight"}
        return JSONResponse(
            {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": "a-m",
                "choices": [{"index": 0, "message": answer, "finish_reason": "stop"}],
            }
        )

    with Recorder(no_usage).serving() as upstream:

        def one(sim_url: str) -> list[dict[str, Any]]:
            entry = sim_provider("a", "openai", sim_url, [model("a-m", aliases=["chat"])])
            return [{**entry, "base_url": f"{upstream}/v1"}]

        farm = make_farm(one)
        with farm.client() as http:
            r = http.post("/v1/chat/completions", json=ask("hi", max_tokens=4))
            usage = usage_when(http, 1)
    assert r.status_code == 200, r.text
    assert r.headers["x-relay-usage"] == "estimated"
    assert r.json()["usage"]["estimated"] is True
    assert r.json()["usage"]["completion_tokens"] == 4
    assert rows(usage)["a/a-m"]["estimated_tokens"] == r.json()["usage"]["total_tokens"]
