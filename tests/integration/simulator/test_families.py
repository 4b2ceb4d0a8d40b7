"""Each family's answers, streams and errors, over real HTTP with plain httpx."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest

from tests.integration.simulator.support import anthropic, gemini, ollama, openai, sse

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
