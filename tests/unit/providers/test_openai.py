from __future__ import annotations

import json

import httpx
import pytest

from relay_core.errors import InvalidRequest, UpstreamMalformed, UpstreamQuotaExhausted
from relay_core.schemas.chat import ChatCompletionRequest, FunctionCall, Message, ToolCall
from tests.unit.providers.support import (
    RICH_MESSAGES,
    SECRET,
    TIME_TOOL,
    WEATHER_TOOL,
    collect,
    fixture_json,
    fixture_text,
    json_response,
    request,
    rich_request,
    stream_response,
)


def _answer(name: str, headers: dict[str, str] | None = None):
    return lambda _: json_response(200, fixture_json("openai", name), headers)


async def test_request_goes_through_with_only_the_model_replaced(connect):
    provider, upstream = connect(
        "openai", _answer("completion.json"), headers={"HTTP-Referer": "https://relay.test"}
    )
    req = rich_request(logprobs=True, top_logprobs=2, reasoning_effort="low")
    await provider.complete(req, "llama-3.3-70b-versatile")

    sent = upstream.last
    assert sent.method == "POST"
    assert str(sent.url) == "https://api.groq.com/openai/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {SECRET}"
    assert sent.headers["http-referer"] == "https://relay.test"
    messages = [{k: v for k, v in m.items() if v is not None} for m in RICH_MESSAGES]
    assert upstream.body() == {
        "model": "llama-3.3-70b-versatile",
        "messages": messages,  # the assistant's "content": null is left out
        "temperature": 0,
        "stop": ["END"],
        "seed": 7,
        "max_tokens": 256,
        "tools": [WEATHER_TOOL, TIME_TOOL],
        "tool_choice": "auto",
        "response_format": {"type": "json_object"},
        "logprobs": True,
        "top_logprobs": 2,
        "reasoning_effort": "low",
    }


async def test_messages_built_in_code_are_complete(connect):
    provider, upstream = connect("openai", _answer("completion.json"))
    call = ToolCall(id="c1", function=FunctionCall(name="f"))
    req = ChatCompletionRequest(
        model="alias",
        messages=[
            Message(role="assistant", tool_calls=[call]),
            Message(role="tool", tool_call_id="c1", content="42"),
        ],
    )
    await provider.complete(req, "m")
    assert upstream.body() == {
        "model": "m",
        "messages": [
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": ""}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
        ],
    }


async def test_no_key_means_no_authorization_header(connect):
    provider, upstream = connect("openai", _answer("completion.json"), key=None)
    await provider.complete(request(), "m")
    assert "authorization" not in upstream.last.headers


async def test_response_and_feedback(connect):
    headers = {"x-ratelimit-remaining-requests": "14370", "x-ratelimit-reset-tokens": "7.66s"}
    provider, _ = connect("openai", _answer("completion.json", headers))
    result = await provider.complete(request(), "llama-3.3-70b-versatile")

    assert result.body.id == "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT"
    assert result.body.model == "llama-3.3-70b-versatile"
    assert result.body.choices[0].message.content == "Hello! How can I assist you today?"
    assert result.body.choices[0].finish_reason == "stop"
    assert result.body.usage is not None
    assert (result.body.usage.prompt_tokens, result.body.usage.total_tokens) == (19, 29)
    assert result.feedback.remaining_requests == 14370
    assert result.feedback.reset_tokens_s == pytest.approx(7.66)


async def test_tool_call_response(connect):
    provider, _ = connect("openai", _answer("completion_tool_calls.json"))
    result = await provider.complete(request(), "mistral-small-latest")
    choice = result.body.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert (call.id, call.function.name) == ("call_abc123", "get_current_weather")
    assert json.loads(call.function.arguments) == {"location": "Boston, MA"}


async def test_mistral_model_length_is_length(connect):
    provider, _ = connect("openai", _answer("completion_model_length.json"))
    result = await provider.complete(request(), "mistral-small-latest")
    assert result.body.choices[0].finish_reason == "length"


async def test_openrouter_error_inside_a_200(connect):
    provider, _ = connect("openai", _answer("error_openrouter_200.json"))
    with pytest.raises(UpstreamQuotaExhausted) as caught:
        await provider.complete(request(), "m")
    assert caught.value.upstream_status == 402


async def test_streaming(connect):
    provider, upstream = connect(
        "openai", lambda _: stream_response(fixture_text("openai", "stream.sse"))
    )
    req = request(stream=True, stream_options={"include_usage": True}, model_name="x")
    chunks, _ = await collect(provider, req, "llama-3.1-8b-instant")

    assert upstream.body() == {
        "model": "llama-3.1-8b-instant",
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert {c.id for c in chunks} == {"chatcmpl-123"}
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello there"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 11


async def test_complete_never_sends_stream_options(connect):
    provider, upstream = connect("openai", _answer("completion.json"))
    await provider.complete(request(stream=True, stream_options={"include_usage": True}), "m")
    assert "stream" not in upstream.body()
    assert "stream_options" not in upstream.body()


async def test_streamed_tool_calls(connect):
    sse = fixture_text("openai", "stream_tool_calls.sse")
    provider, _ = connect("openai", lambda _: stream_response(sse))
    chunks, _ = await collect(provider, request(tools=[WEATHER_TOOL]))
    calls = [tc for c in chunks for tc in c.choices[0].delta.tool_calls or []]
    assert calls[0].id == "call_DdmO9pD3xa9XTPNJ32zg2hcA"
    assert calls[0].function == {"name": "get_weather", "arguments": ""}
    arguments = "".join((tc.function or {}).get("arguments", "") for tc in calls)
    assert json.loads(arguments) == {"location": "Paris"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_stream_ids_and_roles_are_made_consistent(connect):
    sse = (
        'data: {"id":"a","model":"m","created":1,"choices":[{"delta":{"content":"x"}}]}\n\n'
        'data: {"id":"b","model":"m","created":1,"choices":[{"index":0,"delta":{"content":"y"},'
        '"finish_reason":""}]}\n\n'
    )
    provider, _ = connect("openai", lambda _: stream_response(sse))
    chunks, _ = await collect(provider, request())
    assert [c.id for c in chunks] == ["a", "a"]
    assert [c.choices[0].delta.role for c in chunks] == ["assistant", None]
    assert chunks[1].choices[0].finish_reason is None


async def test_stream_event_with_wrong_shape_is_malformed(connect):
    sse = (
        'data: {"id":"a","model":"m","choices":[{"index":0,"delta":{"content":"x"}}]}\n\n'
        'data: {"choices": 3}\n\n'
    )
    provider, _ = connect("openai", lambda _: stream_response(sse))
    async with provider.stream(request(), "m") as stream:
        iterator = aiter(stream)
        assert (await anext(iterator)).choices[0].delta.content == "x"
        with pytest.raises(UpstreamMalformed):
            await anext(iterator)


async def test_error_event_in_the_stream_raises_the_mapped_error(connect):
    sse = 'data: {"error": {"code": 402, "message": "Insufficient credits"}}\n\n'
    provider, _ = connect("openai", lambda _: stream_response(sse))
    with pytest.raises(UpstreamQuotaExhausted):
        async with provider.stream(request(), "m"):
            pytest.fail("the stream must not open")


async def test_request_carries_the_provider_timeout(connect):
    seen: list[dict[str, float | None]] = []

    def respond(req: httpx.Request) -> httpx.Response:
        seen.append(req.extensions["timeout"])
        return json_response(200, fixture_json("openai", "completion.json"))

    provider, _ = connect("openai", respond, timeout_s=12.5)
    await provider.complete(request(), "m")
    assert seen[0]["read"] == 12.5
    assert seen[0]["connect"] == 5.0


# --- Servers that implement less than OpenAI does (issue 14, item 8) ---


async def test_max_completion_tokens_goes_as_max_tokens_to_a_max_tokens_only_server(connect):
    provider, upstream = connect("openai", _answer("completion.json"), max_tokens_only=True)
    await provider.complete(request(max_completion_tokens=5), "m")
    body = upstream.body()
    assert body["max_tokens"] == 5 and "max_completion_tokens" not in body
    # Both set: OpenAI's newer spelling wins (as Relay's own output cap reads it).
    await provider.complete(request(max_completion_tokens=5, max_tokens=50), "m")
    assert upstream.body()["max_tokens"] == 5 and "max_completion_tokens" not in upstream.body()
    await provider.complete(request(max_tokens=7), "m")
    assert upstream.body()["max_tokens"] == 7


async def test_max_completion_tokens_goes_through_unchanged_by_default(connect):
    provider, upstream = connect("openai", _answer("completion.json"))
    await provider.complete(request(max_completion_tokens=5), "m")
    body = upstream.body()
    assert body["max_completion_tokens"] == 5 and "max_tokens" not in body


@pytest.mark.parametrize("streamed", [False, True])
async def test_several_choices_are_refused_by_a_single_choice_server(connect, streamed):
    provider, upstream = connect("openai", _answer("completion.json"), single_choice=True)
    with pytest.raises(InvalidRequest) as caught:
        if streamed:
            await collect(provider, request(n=3, stream=True))
        else:
            await provider.complete(request(n=3), "m")
    assert caught.value.param == "n" and "one choice" in caught.value.message
    assert upstream.requests == []  # refused before anything was sent
    await provider.complete(request(n=1), "m")  # n: 1 asks for nothing more
    assert upstream.body()["n"] == 1


async def test_several_choices_go_through_by_default(connect):
    provider, upstream = connect("openai", _answer("completion.json"))
    await provider.complete(request(n=3), "m")
    assert upstream.body()["n"] == 3


REPEATED_TOOL_IDS = "".join(
    "data: "
    + json.dumps(
        {
            "id": "c",
            "model": "m",
            "created": 1,
            "choices": [{"index": 0, "delta": {"tool_calls": calls}, "finish_reason": None}],
        }
    )
    + "\n\n"
    for calls in (
        [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather"}}],
        [
            {
                "index": 0,
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":'},
            }
        ],
        [
            {
                "index": 0,
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '"Paris"}'},
            },
            {"index": 1, "id": "call_2", "type": "function", "function": {"name": "get_"}},
        ],
        [{"index": 1, "function": {"name": "time", "arguments": "{}"}}],
    )
)


async def test_streamed_tool_call_ids_and_names_come_once_per_call(connect):
    """A server repeating id/type/name on every delta (LangChain would build
    ``get_weatherget_weather``): later deltas carry the index and arguments only."""
    provider, _ = connect("openai", lambda _: stream_response(REPEATED_TOOL_IDS))
    chunks, _ = await collect(provider, request(tools=[WEATHER_TOOL]))
    calls = [tc for c in chunks for tc in c.choices[0].delta.tool_calls or []]
    sent = [tc.model_dump(exclude_none=True) for tc in calls]
    assert sent == [
        {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather"}},
        {"index": 0, "function": {"arguments": '{"city":'}},
        {"index": 0, "function": {"arguments": '"Paris"}'}},
        {"index": 1, "id": "call_2", "type": "function", "function": {"name": "get_"}},
        # a name that is not a repeat is a fragment of it: sent on
        {"index": 1, "function": {"name": "time", "arguments": "{}"}},
    ]
