from __future__ import annotations

import json

import pytest

from relay_core.errors import InvalidRequest, UpstreamMalformed, UpstreamUnavailable
from relay_core.providers.anthropic import messages_url
from tests.unit.providers.support import (
    SECRET,
    WEATHER_PARAMETERS,
    WEATHER_TOOL,
    collect,
    fixture_json,
    fixture_text,
    json_response,
    request,
    rich_request,
    stream_response,
)


def _answer(name: str):
    return lambda _: json_response(200, fixture_json("anthropic", name))


def _sse(name: str):
    return lambda _: stream_response(fixture_text("anthropic", name))


@pytest.mark.parametrize(
    ("response_format", "says"),
    [
        ({"type": "json_object"}, "Answer with one JSON object only"),
        (
            {"type": "json_schema", "json_schema": {"name": "p", "schema": {"type": "object"}}},
            'valid against this JSON Schema: {"type":"object"}',
        ),
    ],
)
async def test_json_modes_become_a_system_instruction(connect, response_format, says):
    """No JSON mode at Anthropic: the instruction ends the system prompt (docs/answers.md)."""
    provider, upstream = connect("anthropic", _answer("message.json"))
    await provider.complete(
        request(
            messages=[
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "A person?"},
            ],
            response_format=response_format,
        ),
        "claude-3-5-haiku-latest",
    )
    system = upstream.body()["system"]
    assert system[0] == {"type": "text", "text": "You are terse."}
    assert says in system[1]["text"]


async def test_rich_request_mapping(connect):
    provider, upstream = connect("anthropic", _answer("message.json"))
    await provider.complete(rich_request(response_format=None), "claude-3-5-haiku-latest")

    sent = upstream.last
    assert str(sent.url) == "https://api.anthropic.com/v1/messages"
    assert sent.headers["x-api-key"] == SECRET
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert upstream.body() == {
        "model": "claude-3-5-haiku-latest",
        "max_tokens": 256,
        "system": "You are terse.",
        "messages": [
            {"role": "user", "content": "Weather in Paris, and the time?"},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "call_1",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    },
                    {
                        "type": "tool_use",
                        "id": "call_2",
                        "name": "get_time",
                        "input": {"tz": "Europe/Paris"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": '{"temp_c": 21}'},
                    {"type": "tool_result", "tool_use_id": "call_2", "content": "14:05"},
                ],
            },
            {"role": "user", "content": "Summarise."},
        ],
        "temperature": 0,
        "stop_sequences": ["END"],
        "tools": [
            {
                "name": "get_weather",
                "description": "Weather for a city",
                "input_schema": WEATHER_PARAMETERS,
            },
            {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
        ],
        "tool_choice": {"type": "auto"},
    }  # seed is on the documented drop list


@pytest.mark.parametrize(
    ("model", "max_tokens"), [("model-a", 1000), ("model-b", 4096), ("unknown", 4096)]
)
async def test_max_tokens_default(connect, model, max_tokens):
    provider, upstream = connect("anthropic", _answer("message.json"))
    await provider.complete(request(), model)
    assert upstream.body()["max_tokens"] == max_tokens


def test_base_url_ending_in_v1_is_not_doubled():
    assert messages_url("https://api.anthropic.com/v1/") == "https://api.anthropic.com/v1/messages"
    assert messages_url("http://sim:8900/anthropic") == "http://sim:8900/anthropic/v1/messages"


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"type": "tool", "name": "get_weather"},
        ),
    ],
)
async def test_tool_choice(connect, choice, expected):
    provider, upstream = connect("anthropic", _answer("message.json"))
    await provider.complete(request(tools=[WEATHER_TOOL], tool_choice=choice), "c")
    assert upstream.body()["tool_choice"] == expected


async def test_user_parallel_tool_calls_top_k_and_images(connect):
    provider, upstream = connect("anthropic", _answer("message.json"))
    content = [
        {"type": "text", "text": "Compare"},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
    ]
    req = request(
        messages=[
            {"role": "system", "content": "A"},
            {"role": "developer", "content": "B"},
            {"role": "user", "content": content},
        ],
        user="u-42",
        parallel_tool_calls=False,
        tools=[WEATHER_TOOL],
        top_k=5,
        presence_penalty=1.0,
    )
    await provider.complete(req, "c")
    body = upstream.body()
    assert body["system"] == [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}]
    assert body["metadata"] == {"user_id": "u-42"}
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert body["top_k"] == 5
    assert "presence_penalty" not in body
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "Compare"},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
    ]


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"temperature": 1.5}, "temperature"),
        ({"response_format": {"type": "json_schema", "json_schema": {}}}, "response_format"),
        ({"parallel_tool_calls": "no"}, "parallel_tool_calls"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0].role"),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "id": "c",
                                "type": "function",
                                "function": {"name": "f", "arguments": "[1]"},
                            }
                        ],
                    }
                ]
            },
            "messages[0].tool_calls[0].function.arguments",
        ),
    ],
)
async def test_refused_parameters(connect, fields, param):
    provider, upstream = connect("anthropic", _answer("message.json"))
    with pytest.raises(InvalidRequest) as caught:
        await provider.complete(request(**fields), "c")
    assert caught.value.param == param
    assert upstream.requests == []


async def test_text_answer(connect):
    provider, _ = connect("anthropic", _answer("message.json"))
    result = await provider.complete(request(), "claude-3-5-haiku-latest")
    choice = result.body.choices[0]
    assert choice.message.content == "Hi! My name is Claude. How can I help?"
    assert choice.finish_reason == "stop"
    assert result.body.model == "claude-3-5-haiku-20241022"
    assert result.body.usage is not None
    assert result.body.usage.model_dump() == {
        "prompt_tokens": 2095,
        "completion_tokens": 503,
        "total_tokens": 2598,
    }


async def test_tool_use_answer(connect):
    provider, _ = connect("anthropic", _answer("message_tool_use.json"))
    result = await provider.complete(request(tools=[WEATHER_TOOL]), "c")
    choice = result.body.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "I'll check the current weather in San Francisco for you."
    call = (choice.message.tool_calls or [])[0]
    assert call.id == "toolu_01A09q90qw90lq917835lq9"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {
        "location": "San Francisco, CA",
        "unit": "celsius",
    }
    assert result.body.usage is not None
    assert result.body.usage.prompt_tokens == 400  # input + cache creation + cache read


async def test_max_tokens_answer(connect):
    provider, _ = connect("anthropic", _answer("message_max_tokens.json"))
    result = await provider.complete(request(), "c")
    assert result.body.choices[0].finish_reason == "length"


async def test_wrong_shape_is_malformed(connect):
    provider, _ = connect("anthropic", lambda _: json_response(200, {"completion": "hi"}))
    with pytest.raises(UpstreamMalformed):
        await provider.complete(request(), "c")


async def test_streaming(connect):
    provider, upstream = connect("anthropic", _sse("stream.sse"))
    chunks, _ = await collect(provider, request(), "c")
    assert upstream.body()["stream"] is True
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello!"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.model_dump() == {
        "prompt_tokens": 25,
        "completion_tokens": 15,
        "total_tokens": 40,
    }


async def test_streamed_tool_use(connect):
    provider, _ = connect("anthropic", _sse("stream_tool_use.sse"))
    chunks, _ = await collect(provider, request(tools=[WEATHER_TOOL]))
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert calls[0].id == "toolu_01T1x1fJ34qAmk2tNTrN7Up6"
    assert calls[0].function == {"name": "get_weather", "arguments": ""}
    assert {tc.index for tc in calls} == {0}
    arguments = "".join((tc.function or {}).get("arguments", "") for tc in calls)
    assert json.loads(arguments) == {"location": "San Francisco, CA"}
    assert chunks[-2].choices[0].finish_reason == "tool_calls"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 89


async def test_error_event_before_any_chunk_raises_on_enter(connect):
    provider, _ = connect("anthropic", _sse("stream_error_first.sse"))
    with pytest.raises(UpstreamUnavailable) as caught:
        async with provider.stream(request(), "c"):
            pytest.fail("the stream must not open")
    assert caught.value.message.endswith("Overloaded")


async def test_error_event_midway_raises_while_iterating(connect):
    provider, _ = connect("anthropic", _sse("stream_error_midway.sse"))
    received = []
    with pytest.raises(UpstreamUnavailable):
        async with provider.stream(request(), "c") as stream:
            async for chunk in stream:
                received.append(chunk)
    assert "".join(c.choices[0].delta.content or "" for c in received) == "Hel"
