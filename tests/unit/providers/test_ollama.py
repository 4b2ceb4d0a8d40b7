from __future__ import annotations

import json

import pytest

from relay_core.errors import InvalidRequest, UpstreamMalformed, UpstreamUnavailable
from relay_core.providers.ollama import chat_url
from tests.unit.providers.support import (
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


def _answer(name: str):
    return lambda _: json_response(200, fixture_json("ollama", name))


def _ndjson(name: str):
    return lambda _: stream_response(
        fixture_text("ollama", name), content_type="application/x-ndjson"
    )


async def test_rich_request_mapping(connect):
    provider, upstream = connect("ollama", _answer("chat.json"), key=None)
    await provider.complete(rich_request(), "llama3.2")

    sent = upstream.last
    assert str(sent.url) == "http://127.0.0.1:11434/api/chat"
    assert "authorization" not in sent.headers
    assert upstream.body() == {
        "model": "llama3.2",
        "stream": False,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Weather in Paris, and the time?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                    {"function": {"name": "get_time", "arguments": {"tz": "Europe/Paris"}}},
                ],
            },
            {"role": "tool", "content": '{"temp_c": 21}', "tool_name": "get_weather"},
            {"role": "tool", "content": "14:05", "tool_name": "get_time"},
            {"role": "user", "content": "Summarise."},
        ],
        "options": {"temperature": 0, "num_predict": 256, "stop": ["END"], "seed": 7},
        "format": "json",
        "tools": [WEATHER_TOOL, TIME_TOOL],
    }


def test_base_url_ending_in_api_is_not_doubled():
    assert chat_url("http://gpu:11434/api/") == "http://gpu:11434/api/chat"


async def test_json_schema_images_and_options(connect):
    provider, upstream = connect("ollama", _answer("chat.json"), key=None)
    schema = {"type": "object", "properties": {"x": {"type": "string"}}}
    content = [
        {"type": "text", "text": "What is"},
        {"type": "text", "text": " this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    req = request(
        messages=[{"role": "user", "content": content}],
        response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": schema}},
        top_p=0.5,
        top_k=20,
        presence_penalty=0.1,
        frequency_penalty=0.2,
        tools=[WEATHER_TOOL],
        tool_choice="none",
    )
    await provider.complete(req, "m")
    body = upstream.body()
    assert body["format"] == schema
    assert body["messages"] == [
        {"role": "user", "content": "What is this?", "images": ["iVBORw0KGgo="]}
    ]
    assert body["options"] == {
        "top_p": 0.5,
        "top_k": 20,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.2,
    }
    assert "tools" not in body  # tool_choice "none": no tools offered


async def test_a_configured_key_is_sent_as_bearer(connect):
    provider, upstream = connect("ollama", _answer("chat.json"), key="ollama-cloud-key")
    await provider.complete(request(), "m")
    assert upstream.last.headers["authorization"] == "Bearer ollama-cloud-key"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"n": 3}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"tools": [WEATHER_TOOL], "tool_choice": "required"}, "tool_choice"),
        ({"modalities": ["text", "audio"]}, "modalities"),
    ],
)
async def test_refused_parameters(connect, fields, param):
    provider, upstream = connect("ollama", _answer("chat.json"), key=None)
    with pytest.raises(InvalidRequest) as caught:
        await provider.complete(request(**fields), "m")
    assert caught.value.param == param
    assert upstream.requests == []


async def test_text_answer(connect):
    provider, _ = connect("ollama", _answer("chat.json"), key=None)
    result = await provider.complete(request(), "llama3.2")
    choice = result.body.choices[0]
    assert choice.message.content == "Hello! How are you today?"
    assert choice.finish_reason == "stop"
    assert result.body.usage is not None
    assert result.body.usage.model_dump() == {
        "prompt_tokens": 26,
        "completion_tokens": 298,
        "total_tokens": 324,
    }


async def test_tool_call_answer(connect):
    provider, _ = connect("ollama", _answer("chat_tool_calls.json"), key=None)
    result = await provider.complete(request(tools=[WEATHER_TOOL]), "m")
    choice = result.body.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    call = (choice.message.tool_calls or [])[0]
    assert call.function.name == "get_current_weather"
    assert json.loads(call.function.arguments) == {"format": "celsius", "location": "Paris, FR"}


async def test_length_answer(connect):
    provider, _ = connect("ollama", _answer("chat_length.json"), key=None)
    result = await provider.complete(request(), "m")
    assert result.body.choices[0].finish_reason == "length"


async def test_wrong_shape_is_malformed(connect):
    provider, _ = connect("ollama", lambda _: json_response(200, {"response": "hi", "done": True}))
    with pytest.raises(UpstreamMalformed):
        await provider.complete(request(), "m")


async def test_streaming(connect):
    provider, upstream = connect("ollama", _ndjson("stream.ndjson"), key=None)
    chunks, _ = await collect(provider, request(), "llama3.2")
    assert upstream.body()["stream"] is True
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "The sky is blue."
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 308


async def test_streamed_tool_calls(connect):
    provider, _ = connect("ollama", _ndjson("stream_tool_calls.ndjson"), key=None)
    chunks, _ = await collect(provider, request(tools=[WEATHER_TOOL]))
    calls = chunks[0].choices[0].delta.tool_calls or []
    assert calls[0].index == 0
    assert calls[0].function == {"name": "get_weather", "arguments": '{"city": "Toronto"}'}
    assert chunks[1].choices[0].finish_reason == "tool_calls"


async def test_error_line_midway_raises(connect):
    provider, _ = connect("ollama", _ndjson("stream_error.ndjson"), key=None)
    with pytest.raises(UpstreamUnavailable) as caught:
        async with provider.stream(request(), "m") as stream:
            async for _ in stream:
                pass
    assert "unexpected EOF" in caught.value.message
