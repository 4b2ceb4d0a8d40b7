"""The provider simulator over real HTTP, with plain httpx: each family's answers, streams and
errors, the limits, the faults and the admin API.

One server for the module; each test uses providers of its own, so tests do not share limit
windows or counters. Time-dependent behaviour (sliding windows, flapping) runs on a fake clock.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from relay_core.simulator import SimConfig, SimServer


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def _p(name: str, api: str, **fields: Any) -> dict[str, Any]:
    models = [{"id": "m1", "aliases": ["m1-alias"]}, {"id": "e1", "embeddings": True}]
    return {"name": name, "api": api, "models": models, **fields}


FAMILIES = ["openai", "gemini", "anthropic", "ollama"]

CONFIG = SimConfig.model_validate(
    {
        "seed": 7,
        "providers": [
            _p("oa", "openai", api_key="sk-oa", rpm=1000, tpm=1_000_000),
            _p("oa-rpm", "openai", rpm=2, retry_after_ms=True),
            _p("oa-tpm", "openai", tpm=100),
            _p("mi", "openai", rpm=10, headers="mistral"),
            _p("ge", "gemini", api_key="g-key", rpm=1000),
            _p("ge-rpm", "gemini", rpm=1),
            _p("an", "anthropic", api_key="a-key", rpm=1000, tpm=1_000_000),
            _p("an-rpm", "anthropic", rpm=1),
            _p("ol", "ollama"),
            *(_p(f"f-{family}", family) for family in FAMILIES),
            _p("flap", "openai", flap_s=10),
            _p("slide", "openai", rpm=2),
            _p("persec", "openai", rpm=120, window_s=1),
            _p("stats", "openai", rpm=3),
            _p("conc", "openai", concurrency=2, latency_ms=300),
            _p("busy", "openai", latency_ms=100, jitter_ms=50),
            _p("inflight", "openai", latency_ms=300),
            _p("mixed", "openai", error_rate=0.5),
        ],
    }
)


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
def sim(clock: FakeClock) -> Iterator[SimServer]:
    with SimServer(CONFIG, clock=clock) as server:
        yield server


@pytest.fixture(scope="module")
def http(sim: SimServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, timeout=5) as client:
        yield client


# ---- requests in each family's format -------------------------------------------------------


def openai(
    http: httpx.Client, provider: str, text: str, key: str | None = None, **extra: Any
) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    body = {"model": "m1", "messages": [{"role": "user", "content": text}], **extra}
    return http.post(f"/{provider}/v1/chat/completions", json=body, headers=headers)


def gemini(
    http: httpx.Client,
    provider: str,
    text: str,
    key: str | None = None,
    stream: bool = False,
    model: str = "m1",
    **extra: Any,
) -> httpx.Response:
    action = "streamGenerateContent?alt=sse" if stream else "generateContent"
    headers = {"x-goog-api-key": key} if key else {}
    body = {"contents": [{"role": "user", "parts": [{"text": text}]}], **extra}
    return http.post(f"/{provider}/v1beta/models/{model}:{action}", json=body, headers=headers)


def anthropic(
    http: httpx.Client, provider: str, text: str, key: str | None = None, **extra: Any
) -> httpx.Response:
    headers = {"anthropic-version": "2023-06-01"} | ({"x-api-key": key} if key else {})
    body = {"model": "m1", "max_tokens": 100, "messages": [{"role": "user", "content": text}]}
    return http.post(f"/{provider}/v1/messages", json=body | extra, headers=headers)


def ollama(http: httpx.Client, provider: str, text: str, **extra: Any) -> httpx.Response:
    body = {"model": "m1", "messages": [{"role": "user", "content": text}], **extra}
    return http.post(f"/{provider}/api/chat", json=body)


def call(http: httpx.Client, family: str, provider: str, text: str) -> httpx.Response:
    """A non-streaming chat request to ``provider`` in ``family``'s format."""
    if family == "openai":
        return openai(http, provider, text)
    if family == "gemini":
        return gemini(http, provider, text)
    if family == "anthropic":
        return anthropic(http, provider, text)
    return ollama(http, provider, text, stream=False)


def error_kind(family: str, response: httpx.Response) -> str:
    """The family's own name for the error in ``response``."""
    body = response.json()
    if family == "openai":
        return str(body["error"]["type"])
    if family == "gemini":
        return str(body["error"]["status"])
    if family == "anthropic":
        assert body["type"] == "error"
        return str(body["error"]["type"])
    assert isinstance(body["error"], str)
    return "error"


def sse(text: str, sep: str = "\n\n") -> list[tuple[str | None, str]]:
    """(event, data) pairs of an SSE body."""
    events = []
    for block in text.split(sep):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields.get("event"), fields["data"]))
    return events


def stats(http: httpx.Client, provider: str) -> dict[str, Any]:
    data: dict[str, Any] = http.get("/_sim/stats").json()["providers"][provider]
    return data


@contextmanager
def patched(http: httpx.Client, provider: str, **changes: Any) -> Iterator[None]:
    before = http.get(f"/_sim/providers/{provider}").json()
    http.post(f"/_sim/providers/{provider}", json=changes).raise_for_status()
    try:
        yield
    finally:
        restore = {k: before[k] for k in changes}
        http.post(f"/_sim/providers/{provider}", json=restore).raise_for_status()


# ---- OpenAI ---------------------------------------------------------------------------------


def test_openai_answer_shape(http):
    r = openai(http, "oa", "hello there", key="sk-oa", model="m1-alias")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["model"] == "m1"
    (choice,) = body["choices"]
    assert choice["message"] == {
        "role": "assistant",
        "content": "sim:oa/m1: hello there",
        "refusal": None,
    }
    assert choice["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 6, "total_tokens": 9}
    assert r.headers["x-ratelimit-limit-requests"] == "1000"
    assert int(r.headers["x-ratelimit-remaining-requests"]) < 1000
    assert r.headers["x-ratelimit-reset-tokens"].endswith("s")


def test_openai_stream_shape(http):
    r = openai(
        http,
        "oa",
        "stream me a fairly long answer please",
        key="sk-oa",
        stream=True,
        stream_options={"include_usage": True},
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = sse(r.text)
    assert events[-1] == (None, "[DONE]")
    chunks = [orjson.loads(data) for _, data in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "sim:oa/m1: stream me a fairly long answer please"
    assert len(chunks) > 4  # really cut into pieces
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 12
    assert all(c["usage"] is None for c in chunks[:-1])


def test_openai_stream_without_usage_has_no_usage_chunk(http):
    r = openai(http, "oa", "hi", key="sk-oa", stream=True)
    chunks = [orjson.loads(d) for _, d in sse(r.text)[:-1]]
    assert all("usage" not in c and c["choices"] for c in chunks)


def test_openai_tool_call(http):
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    r = openai(http, "oa", "weather? [call:get_weather]", key="sk-oa", tools=tools)
    (choice,) = r.json()["choices"]
    assert choice["finish_reason"] == "tool_calls"
    (tool_call,) = choice["message"]["tool_calls"]
    assert tool_call["type"] == "function"
    assert tool_call["function"] == {"name": "get_weather", "arguments": "{}"}
    assert choice["message"]["content"] is None

    r = openai(http, "oa", "weather? [call:get_weather]", key="sk-oa", tools=tools, stream=True)
    chunks = [orjson.loads(d) for _, d in sse(r.text)[:-1]]
    first = chunks[0]["choices"][0]["delta"]["tool_calls"][0]
    assert first["function"]["name"] == "get_weather" and first["id"].startswith("call_")
    args = "".join(
        tc["function"].get("arguments", "")
        for c in chunks
        for tc in c["choices"][0]["delta"].get("tool_calls") or []
    )
    assert args == "{}"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_openai_max_tokens_cuts_the_answer(http):
    r = openai(http, "oa", "x" * 200, key="sk-oa", max_completion_tokens=5)
    (choice,) = r.json()["choices"]
    assert choice["finish_reason"] == "length"
    assert len(choice["message"]["content"]) == 20


async def test_each_concurrent_request_gets_its_own_answer(sim):
    async with httpx.AsyncClient(base_url=sim.url, timeout=5) as client:

        async def ask(i: int) -> tuple[int, str]:
            body = {"model": "m1", "messages": [{"role": "user", "content": f"question {i}"}]}
            r = await client.post("/busy/v1/chat/completions", json=body)
            return i, r.json()["choices"][0]["message"]["content"]

        answers = await asyncio.gather(*(ask(i) for i in range(30)))
    assert all(content == f"sim:busy/m1: question {i}" for i, content in answers)


def test_openai_429_on_requests_with_headers(http):
    assert [openai(http, "oa-rpm", "a").status_code for _ in range(2)] == [200, 200]
    r = openai(http, "oa-rpm", "a")
    assert r.status_code == 429
    error = r.json()["error"]
    assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")
    assert "requests per minute (RPM): Limit 2, Used 2, Requested 1" in error["message"]
    assert 59 <= int(r.headers["retry-after"]) <= 60
    assert 59_000 <= int(r.headers["retry-after-ms"]) <= 60_000
    assert r.headers["x-ratelimit-remaining-requests"] == "0"


def test_openai_429_on_tokens(http):
    assert openai(http, "oa-tpm", "abcd", max_tokens=80).status_code == 200  # costs 81
    r = openai(http, "oa-tpm", "abcd", max_tokens=80)
    assert r.status_code == 429
    assert r.json()["error"]["type"] == "tokens"
    assert r.headers["x-ratelimit-remaining-tokens"] == "19"
    assert openai(http, "oa-tpm", "abcd", max_tokens=18).status_code == 200  # 19 still fit


def test_mistral_style_headers(http):
    r = openai(http, "mi", "hi")
    assert r.headers["x-ratelimit-limit-req-minute"] == "10"
    assert r.headers["x-ratelimit-remaining-req-minute"] == "9"
    assert "x-ratelimit-limit-requests" not in r.headers


@pytest.mark.parametrize("key", [None, "sk-wrong"])
def test_openai_401(http, key):
    r = openai(http, "oa", "hi", key=key)
    assert r.status_code == 401
    error = r.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_api_key")


def test_openai_404_unknown_model(http):
    r = openai(http, "oa", "hi", key="sk-oa", model="gpt-9")
    assert r.status_code == 404
    error = r.json()["error"]
    assert error["code"] == "model_not_found"
    assert "gpt-9" in error["message"]


def test_openai_400_on_bad_bodies(http):
    headers = {"authorization": "Bearer sk-oa", "content-type": "application/json"}
    r = http.post("/oa/v1/chat/completions", content=b"{not json", headers=headers)
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"
    r = http.post("/oa/v1/chat/completions", json={"model": "m1"}, headers=headers)
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "messages"


def test_unknown_provider_and_wrong_family_are_404(http):
    assert openai(http, "nobody", "hi").status_code == 404
    r = openai(http, "ge", "hi")  # a Gemini provider has no OpenAI endpoint
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "unknown_url"


def test_openai_models_and_embeddings(http: httpx.Client) -> None:
    auth = {"authorization": "Bearer sk-oa"}
    models = http.get("/oa/v1/models", headers=auth).json()
    assert [m["id"] for m in models["data"]] == ["m1", "e1"]
    assert http.get("/oa/v1/models").status_code == 401

    def embed(inputs: Any, model: str = "e1") -> httpx.Response:
        return http.post("/oa/v1/embeddings", json={"model": model, "input": inputs}, headers=auth)

    body = embed(["same text", "other text", "same text"]).json()
    vectors = [d["embedding"] for d in body["data"]]
    assert [d["index"] for d in body["data"]] == [0, 1, 2]
    assert vectors[0] == vectors[2] != vectors[1]
    assert body["usage"] == {"prompt_tokens": 7, "total_tokens": 7}  # 28 characters
    assert embed("one string").status_code == 200
    assert embed("hi", model="m1").status_code == 400  # not an embeddings model


# ---- Gemini ---------------------------------------------------------------------------------


def test_gemini_answer_shape(http):
    r = gemini(
        http,
        "ge",
        "hello gemini",
        key="g-key",
        generationConfig={"maxOutputTokens": 100},
        systemInstruction={"parts": [{"text": "be brief"}]},
    )
    assert r.status_code == 200
    body = r.json()
    (candidate,) = body["candidates"]
    assert candidate["content"] == {"parts": [{"text": "sim:ge/m1: hello gemini"}], "role": "model"}
    assert candidate["finishReason"] == "STOP"
    assert body["usageMetadata"] == {
        "promptTokenCount": 5,
        "candidatesTokenCount": 6,
        "totalTokenCount": 11,
    }
    assert body["modelVersion"] == "m1"
    assert not any(h.startswith("x-ratelimit") for h in r.headers)


def test_gemini_key_in_query_string(http):
    r = http.post(
        "/ge/v1beta/models/m1:generateContent?key=g-key",
        json={"contents": [{"parts": [{"text": "hi"}]}]},
    )
    assert r.status_code == 200


def test_gemini_stream_shape(http):
    r = gemini(http, "ge", "please stream a longer gemini answer", key="g-key", stream=True)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert "\r\n\r\n" in r.text
    chunks = [orjson.loads(data) for _, data in sse(r.text, sep="\r\n\r\n")]
    assert len(chunks) > 2
    text = "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks)
    assert text == "sim:ge/m1: please stream a longer gemini answer"
    assert all("finishReason" not in c["candidates"][0] for c in chunks[:-1])
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"]["candidatesTokenCount"] == 12


def test_gemini_function_call(http):
    tools = [{"functionDeclarations": [{"name": "lookup"}]}]
    r = gemini(http, "ge", "find it [call:lookup]", key="g-key", tools=tools)
    part = r.json()["candidates"][0]["content"]["parts"][0]
    assert part == {"functionCall": {"name": "lookup", "args": {}}}


def test_gemini_429_is_resource_exhausted_with_retry_info(http):
    assert gemini(http, "ge-rpm", "a").status_code == 200
    r = gemini(http, "ge-rpm", "a")
    assert r.status_code == 429
    error = r.json()["error"]
    assert (error["code"], error["status"]) == (429, "RESOURCE_EXHAUSTED")
    retry = next(d for d in error["details"] if d["@type"].endswith("google.rpc.RetryInfo"))
    assert retry["retryDelay"] in {"59s", "60s"}
    assert "retry-after" not in r.headers
    assert not any(h.startswith("x-ratelimit") for h in r.headers)


def test_gemini_errors(http):
    r = gemini(http, "ge", "hi", key="wrong")
    assert (r.status_code, r.json()["error"]["status"]) == (401, "UNAUTHENTICATED")
    r = gemini(http, "ge", "hi", key="g-key", model="gemini-9")
    assert (r.status_code, r.json()["error"]["status"]) == (404, "NOT_FOUND")
    assert "models/gemini-9" in r.json()["error"]["message"]
    r = http.post(
        "/ge/v1beta/models/m1:streamGenerateContent",
        headers={"x-goog-api-key": "g-key"},
        json={"contents": [{"parts": [{"text": "hi"}]}]},
    )
    assert (r.status_code, r.json()["error"]["status"]) == (400, "INVALID_ARGUMENT")
    r = http.post("/ge/v1beta/models/m1:countTokens", headers={"x-goog-api-key": "g-key"}, json={})
    assert r.status_code == 404


# ---- Anthropic ------------------------------------------------------------------------------


def test_anthropic_answer_shape(http):
    r = anthropic(http, "an", "hello claude", key="a-key", system="be nice")
    assert r.status_code == 200
    body = r.json()
    assert body["type"] == "message" and body["role"] == "assistant"
    assert body["id"].startswith("msg_")
    assert body["content"] == [{"type": "text", "text": "sim:an/m1: hello claude"}]
    assert (body["stop_reason"], body["stop_sequence"]) == ("end_turn", None)
    assert body["usage"] == {"input_tokens": 5, "output_tokens": 6}
    assert r.headers["anthropic-ratelimit-requests-limit"] == "1000"
    assert r.headers["anthropic-ratelimit-tokens-reset"].endswith("Z")


def test_anthropic_stream_events(http):
    r = anthropic(http, "an", "stream a claude answer of some length", key="a-key", stream=True)
    assert r.headers["content-type"].startswith("text/event-stream")
    events = sse(r.text)
    kinds = [e for e, _ in events]
    assert kinds[:3] == ["message_start", "content_block_start", "ping"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[3:-3]) == {"content_block_delta"}
    data = [orjson.loads(d) for _, d in events]
    assert all(d["type"] == e for (e, _), d in zip(events, data, strict=True))
    assert data[0]["message"]["usage"]["input_tokens"] == 10
    text = "".join(d["delta"]["text"] for d in data if d["type"] == "content_block_delta")
    assert text == "sim:an/m1: stream a claude answer of some length"
    assert data[-2]["delta"]["stop_reason"] == "end_turn"
    assert data[-2]["usage"]["output_tokens"] == 12  # 48 characters


def test_anthropic_tool_use(http):
    tools = [{"name": "search", "input_schema": {"type": "object"}}]
    body = anthropic(http, "an", "go [call:search]", key="a-key", tools=tools).json()
    (block,) = body["content"]
    assert (block["type"], block["name"], block["input"]) == ("tool_use", "search", {})
    assert body["stop_reason"] == "tool_use"


def test_anthropic_requires_version_and_max_tokens(http):
    body = {"model": "m1", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    r = http.post("/an/v1/messages", json=body, headers={"x-api-key": "a-key"})
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert "anthropic-version" in r.json()["error"]["message"]
    r = anthropic(http, "an", "hi", key="a-key", max_tokens=None)
    assert r.status_code == 400
    assert "max_tokens" in r.json()["error"]["message"]


def test_anthropic_429_401_404(http):
    assert anthropic(http, "an-rpm", "a").status_code == 200
    r = anthropic(http, "an-rpm", "a")
    assert r.status_code == 429
    assert r.json()["error"]["type"] == "rate_limit_error"
    assert int(r.headers["retry-after"]) >= 59
    assert r.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert r.headers["anthropic-ratelimit-requests-reset"].endswith("Z")
    r = anthropic(http, "an", "hi", key="wrong")
    assert (r.status_code, r.json()["error"]["type"]) == (401, "authentication_error")
    r = anthropic(http, "an", "hi", key="a-key", model="claude-9")
    assert (r.status_code, r.json()["error"]["type"]) == (404, "not_found_error")


# ---- Ollama ---------------------------------------------------------------------------------


def test_ollama_answer_shape(http):
    r = ollama(http, "ol", "hello llama", stream=False, options={"num_predict": 50})
    assert r.status_code == 200
    body = r.json()
    assert body["message"] == {"role": "assistant", "content": "sim:ol/m1: hello llama"}
    assert (body["done"], body["done_reason"]) == (True, "stop")
    assert (body["prompt_eval_count"], body["eval_count"]) == (3, 6)
    assert body["created_at"].endswith("Z")
    assert isinstance(body["total_duration"], int)


def test_ollama_streams_ndjson_by_default(http):
    r = ollama(http, "ol", "stream some llama text please")
    assert r.headers["content-type"] == "application/x-ndjson"
    lines = [orjson.loads(line) for line in r.text.splitlines()]
    assert [line["done"] for line in lines] == [False] * (len(lines) - 1) + [True]
    assert (
        "".join(line["message"]["content"] for line in lines)
        == "sim:ol/m1: stream some llama text please"
    )
    assert lines[-1]["done_reason"] == "stop"
    assert lines[-1]["eval_count"] == 10


def test_ollama_has_no_rate_limits_by_default(http):
    codes = {ollama(http, "ol", f"q{i}", stream=False).status_code for i in range(50)}
    assert codes == {200}
    assert not any("ratelimit" in h for h in ollama(http, "ol", "q", stream=False).headers)


def test_ollama_unknown_model(http):
    r = ollama(http, "ol", "hi", model="mistral:7b", stream=False)
    assert r.status_code == 404
    assert r.json() == {"error": 'model "mistral:7b" not found, try pulling it first'}


# ---- faults ---------------------------------------------------------------------------------

_UNAVAILABLE = {"openai": "server_error", "gemini": "UNAVAILABLE", "anthropic": "overloaded_error"}
_SERVER_ERROR = {"openai": "server_error", "gemini": "INTERNAL", "anthropic": "api_error"}
_RATE_LIMITED = {
    "openai": "requests",
    "gemini": "RESOURCE_EXHAUSTED",
    "anthropic": "rate_limit_error",
}


@pytest.mark.parametrize("family", FAMILIES)
def test_outage_is_503_in_the_family_shape(http, family):
    provider = f"f-{family}"
    with patched(http, provider, outage=True):
        r = call(http, family, provider, "hi")
        assert r.status_code == 503
        assert error_kind(family, r) == _UNAVAILABLE.get(family, "error")
    assert call(http, family, provider, "hi").status_code == 200


@pytest.mark.parametrize("family", FAMILIES)
def test_garbage_is_a_200_that_is_not_json(http, family):
    provider = f"f-{family}"
    with patched(http, provider, garbage=True):
        r = call(http, family, provider, "hi")
    assert r.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(r.content)
    r = call(http, family, provider, "hi [sim:garbage]")
    assert r.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(r.content)


@pytest.mark.parametrize("family", FAMILIES)
def test_truncate_drops_the_connection_half_way_through_a_200(http, family):
    provider = f"f-{family}"
    before = http.get("/_sim/stats").json()["providers"][provider]
    with patched(http, provider, truncate=True), pytest.raises(httpx.RemoteProtocolError):
        call(http, family, provider, "hi")
    with pytest.raises(httpx.RemoteProtocolError):
        call(http, family, provider, "hi [sim:truncate]")
    after = http.get("/_sim/stats").json()["providers"][provider]
    assert after["truncated"] == before["truncated"] + 2
    assert after["succeeded"] == before["succeeded"]


@pytest.mark.parametrize("family", FAMILIES)
def test_triggers_500_and_429(http, family):
    provider = f"f-{family}"
    r = call(http, family, provider, "boom [sim:500]")
    assert r.status_code == 500
    assert error_kind(family, r) == _SERVER_ERROR.get(family, "error")
    r = call(http, family, provider, "slow down [sim:429]")
    assert r.status_code == 429
    assert error_kind(family, r) == _RATE_LIMITED.get(family, "error")


@pytest.mark.parametrize("family", FAMILIES)
def test_hang_never_answers_until_the_client_gives_up(sim, http, family):
    provider = f"f-{family}"
    before = stats(http, provider)["hung"]
    with patched(http, provider, hang=True), httpx.Client(base_url=sim.url, timeout=0.3) as client:
        started = time.perf_counter()
        with pytest.raises(httpx.ReadTimeout):
            call(client, family, provider, "anyone?")
        assert time.perf_counter() - started >= 0.3
    assert stats(http, provider)["hung"] == before + 1
    assert wait_until(lambda: stats(http, provider)["in_flight"] == 0)


def test_hang_trigger(sim, http):
    with httpx.Client(base_url=sim.url, timeout=0.2) as client, pytest.raises(httpx.ReadTimeout):
        openai(client, "f-openai", "hello? [sim:hang]")


def wait_until(condition: Any, timeout: float = 5.0) -> bool:
    """Poll ``condition`` (each poll is an HTTP round trip) until true or ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
    return False


def test_slow_trigger_delays_the_answer(http):
    started = time.perf_counter()
    r = openai(http, "f-openai", "take your time [sim:slow=250]")
    assert r.status_code == 200
    assert time.perf_counter() - started >= 0.25


def test_latency_applies_to_every_answer(http):
    with patched(http, "f-ollama", latency_ms=150):
        started = time.perf_counter()
        assert ollama(http, "f-ollama", "hi", stream=False).status_code == 200
        assert time.perf_counter() - started >= 0.15


def test_paced_stream_spaces_its_chunks(http):
    with patched(http, "f-ollama", chunk_delay_ms=40, chunk_chars=8):
        started = time.perf_counter()
        with http.stream(
            "POST",
            "/f-ollama/api/chat",
            json={"model": "m1", "messages": [{"role": "user", "content": "x" * 24}]},
        ) as r:
            arrivals = [time.perf_counter() - started for _ in r.iter_lines()]
    # "sim:f-ollama/m1: " + 24 chars = 41 chars → 6 pieces and the final line: 6 gaps of 40 ms.
    assert len(arrivals) == 7
    assert arrivals[-1] - arrivals[0] >= 0.2


def test_error_rate(http):
    codes = [openai(http, "mixed", f"q{i}").status_code for i in range(200)]
    assert set(codes) == {200, 500}
    assert 60 <= codes.count(500) <= 140
    with patched(http, "mixed", error_rate=1.0):
        assert {openai(http, "mixed", "q").status_code for _ in range(10)} == {500}


def test_flap_alternates_on_the_clock(http, clock):
    assert openai(http, "flap", "hi").status_code == 200
    clock.now += 10
    assert openai(http, "flap", "hi").status_code == 503
    clock.now += 10
    assert openai(http, "flap", "hi").status_code == 200


def test_sliding_window_frees_capacity_on_the_clock(http, clock):
    assert [openai(http, "slide", "a").status_code for _ in range(3)] == [200, 200, 429]
    clock.now += 30
    assert openai(http, "slide", "a").status_code == 429
    clock.now += 30
    assert openai(http, "slide", "a").status_code == 200


def test_one_second_window_holds_rpm_over_60(http, clock):
    assert [openai(http, "persec", "a").status_code for _ in range(3)] == [200, 200, 429]
    r = openai(http, "persec", "a")
    assert r.headers["x-ratelimit-limit-requests"] == "2"
    clock.now += 1
    assert openai(http, "persec", "a").status_code == 200


async def test_concurrency_limit(sim, http):
    async with httpx.AsyncClient(base_url=sim.url, timeout=5) as client:
        body = {"model": "m1", "messages": [{"role": "user", "content": "hi"}]}
        codes = await asyncio.gather(
            *(client.post("/conc/v1/chat/completions", json=body) for _ in range(4))
        )
    assert sorted(r.status_code for r in codes) == [200, 200, 429, 429]
    # Refused requests are never in flight: only the two admitted ones were.
    assert stats(http, "conc")["max_in_flight"] == 2


# ---- admin ----------------------------------------------------------------------------------


def test_admin_stats_count_every_outcome(http):
    for i in range(5):
        openai(http, "stats", f"q{i}")  # rpm=3: 3 accepted, 2 rate limited
    http.post("/_sim/reset").raise_for_status()
    assert stats(http, "stats")["requests"] == 0
    for i in range(4):
        openai(http, "stats", f"q{i}")  # 3 accepted, 1 rate limited: the window was emptied
    openai(http, "stats", "hi", model="nope")
    s = stats(http, "stats")
    assert s["api"] == "openai"
    assert {
        k: s[k] for k in ("requests", "accepted", "succeeded", "rate_limited", "client_errors")
    } == {
        "requests": 5,
        "accepted": 3,
        "succeeded": 3,
        "rate_limited": 1,
        "client_errors": 1,
    }
    assert (
        s["total_tokens"] == s["prompt_tokens"] + s["completion_tokens"] == 3 * (1 + 4)
    )  # "q0" → "sim:stats/m1: q0"
    assert s["models"]["m1"]["accepted"] == 3
    assert s["models"]["e1"]["requests"] == 0
    assert s["in_flight"] == 0 and s["max_in_flight"] == 1
    totals = http.get("/_sim/stats").json()["totals"]
    assert totals["requests"] >= s["requests"]


async def test_admin_stats_track_requests_in_flight(sim, http):
    async with httpx.AsyncClient(base_url=sim.url, timeout=5) as client:
        body = {"model": "m1", "messages": [{"role": "user", "content": "hi"}]}
        replies = await asyncio.gather(
            *(client.post("/inflight/v1/chat/completions", json=body) for _ in range(8))
        )
    assert {r.status_code for r in replies} == {200}
    s = stats(http, "inflight")
    assert s["max_in_flight"] == 8  # all eight were in their 300 ms of latency together
    assert s["in_flight"] == 0


def test_admin_health_and_provider_config(http):
    health = http.get("/_sim/health").json()
    assert health["status"] == "ok"
    assert "oa" in health["providers"]
    shown = http.get("/_sim/providers/oa").json()
    assert shown["api_key"] == "**********"
    assert shown["rpm"] == 1000
    assert http.get("/_sim/providers/nobody").status_code == 404


def test_admin_patch_is_validated(http):
    r = http.post("/_sim/providers/f-openai", json={"latency_ms": -1})
    assert r.status_code == 400
    assert r.json()["error"]["details"][0]["loc"] == ["latency_ms"]
    assert http.post("/_sim/providers/f-openai", json={"outgae": True}).status_code == 400
    assert http.post("/_sim/providers/f-openai", content=b"[1]").status_code == 400
    assert http.post("/_sim/providers/nobody", json={}).status_code == 404


def test_admin_patch_can_set_a_key(http):
    with patched(http, "f-anthropic", api_key="new-key"):
        assert anthropic(http, "f-anthropic", "hi").status_code == 401
        assert anthropic(http, "f-anthropic", "hi", key="new-key").status_code == 200
    assert anthropic(http, "f-anthropic", "hi").status_code == 200


# ---- the server itself ----------------------------------------------------------------------


def test_stopping_releases_hanging_requests():
    config = SimConfig.model_validate({"providers": [_p("h", "openai", hang=True)]})
    server = SimServer(config).start()
    outcome: list[BaseException | int] = []

    def ask() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            try:
                outcome.append(openai(client, "h", "hi").status_code)
            except httpx.HTTPError as exc:
                outcome.append(exc)

    thread = threading.Thread(target=ask)
    thread.start()
    admin = httpx.Client(base_url=server.url, timeout=5)
    assert wait_until(lambda: stats(admin, "h")["hung"] == 1)
    admin.close()
    started = time.perf_counter()
    server.stop()
    thread.join(10)
    assert not thread.is_alive()
    assert time.perf_counter() - started < 5
    assert outcome  # answered (503) or cut off, but no longer waiting


async def test_async_context_manager_and_base_urls():
    config = SimConfig.model_validate(
        {
            "providers": [
                _p("a", "openai"),
                _p("g", "gemini"),
                _p("c", "anthropic"),
                _p("o", "ollama"),
            ]
        }
    )
    async with SimServer(config) as server:
        assert server.base_url("a") == f"{server.url}/a/v1"
        assert server.base_url("g") == f"{server.url}/g/v1beta"
        assert server.base_url("c") == f"{server.url}/c"
        async with httpx.AsyncClient(timeout=5) as client:
            r = await client.post(
                f"{server.base_url('o')}/api/chat",
                json={
                    "model": "m1",
                    "stream": False,
                    "messages": [{"role": "user", "content": "hi"}],
                },
            )
            assert r.json()["message"]["content"] == "sim:o/m1: hi"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/_sim/health")


def test_the_docs_examples_run():
    doc = Path(__file__).parents[2] / "docs" / "simulator.md"
    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(), flags=re.DOTALL)
    assert blocks
    for block in blocks:
        exec(compile(block, str(doc), "exec"), {})
