from __future__ import annotations

import json

import pytest

from relay_core.errors import InvalidRequest, UpstreamMalformed
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
    return lambda _: json_response(200, fixture_json("gemini", name))


async def test_rich_request_mapping(connect):
    provider, upstream = connect("gemini", _answer("generate_content.json"))
    await provider.complete(rich_request(), "gemini-2.0-flash")

    sent = upstream.last
    assert str(sent.url) == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent"
    )
    assert sent.headers["x-goog-api-key"] == SECRET
    assert SECRET not in str(sent.url)
    assert upstream.body() == {
        "systemInstruction": {"parts": [{"text": "You are terse."}]},
        "contents": [
            {"role": "user", "parts": [{"text": "Weather in Paris, and the time?"}]},
            {
                "role": "model",
                "parts": [
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                    {"functionCall": {"name": "get_time", "args": {"tz": "Europe/Paris"}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"temp_c": 21}}},
                    {"functionResponse": {"name": "get_time", "response": {"output": "14:05"}}},
                ],
            },
            {"role": "user", "parts": [{"text": "Summarise."}]},
        ],
        "generationConfig": {
            "temperature": 0,
            "maxOutputTokens": 256,
            "stopSequences": ["END"],
            "seed": 7,
            "responseMimeType": "application/json",
        },
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "get_weather",
                        "description": "Weather for a city",
                        "parametersJsonSchema": WEATHER_PARAMETERS,
                    },
                    {"name": "get_time"},
                ]
            }
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
    }


async def test_generation_parameters(connect):
    provider, upstream = connect("gemini", _answer("generate_content.json"))
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    req = request(
        top_p=0.9,
        top_k=40,
        n=2,
        max_completion_tokens=99,
        presence_penalty=0.5,
        frequency_penalty=0.25,
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
        user="someone",
    )
    await provider.complete(req, "gemini-2.0-flash")
    assert upstream.body()["generationConfig"] == {
        "topP": 0.9,
        "topK": 40,
        "candidateCount": 2,
        "maxOutputTokens": 99,
        "presencePenalty": 0.5,
        "frequencyPenalty": 0.25,
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
    }


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
        ),
    ],
)
async def test_tool_choice(connect, choice, config):
    provider, upstream = connect("gemini", _answer("generate_content.json"))
    await provider.complete(request(tools=[WEATHER_TOOL], tool_choice=choice), "g")
    assert upstream.body()["toolConfig"] == {"functionCallingConfig": config}


async def test_images_as_inline_data(connect):
    provider, upstream = connect("gemini", _answer("generate_content.json"))
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    await provider.complete(request(messages=[{"role": "user", "content": content}]), "g")
    assert upstream.body()["contents"] == [
        {
            "role": "user",
            "parts": [
                {"text": "What is this?"},
                {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
            ],
        }
    ]


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"logprobs": True}, "logprobs"),
        ({"logit_bias": {"50256": -100}}, "logit_bias"),
        ({"service_tier": "flex"}, "service_tier"),
        ({"top_k": "many"}, "top_k"),
        ({"tool_choice": "sometimes"}, "tool_choice"),
        ({"response_format": {"type": "yaml"}}, "response_format"),
        ({"response_format": {"type": "json_schema", "json_schema": {}}}, "response_format"),
        (
            {"messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]},
            "messages[0].tool_call_id",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}],
                    }
                ]
            },
            "messages[0].content[0]",
        ),
    ],
)
async def test_refused_parameters(connect, fields, param):
    provider, upstream = connect("gemini", _answer("generate_content.json"))
    with pytest.raises(InvalidRequest) as caught:
        await provider.complete(request(**fields), "g")
    assert caught.value.param == param
    assert upstream.requests == []


async def test_defaults_that_ask_for_nothing_are_accepted(connect):
    provider, upstream = connect("gemini", _answer("generate_content.json"))
    await provider.complete(request(logprobs=False, parallel_tool_calls=True, store=True), "g")
    assert "generationConfig" not in upstream.body()


async def test_text_answer(connect):
    provider, _ = connect("gemini", _answer("generate_content.json"))
    result = await provider.complete(request(), "gemini-2.5-flash")
    choice = result.body.choices[0]
    assert choice.message.content == (
        "The sky looks blue because air molecules scatter "
        "short blue wavelengths more than red ones."
    )
    assert choice.finish_reason == "stop"
    assert result.body.model == "gemini-2.5-flash"
    assert result.body.usage is not None
    assert result.body.usage.model_dump() == {
        "prompt_tokens": 8,
        "completion_tokens": 25,  # candidates + thoughts
        "total_tokens": 33,
    }


async def test_function_call_answer(connect):
    provider, _ = connect("gemini", _answer("generate_content_function_call.json"))
    result = await provider.complete(request(tools=[WEATHER_TOOL]), "g")
    choice = result.body.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[0].function.arguments) == {"location": "Paris", "unit": "celsius"}
    assert len({c.id for c in calls}) == 2
    assert all(c.id.startswith("call_") for c in calls)


async def test_finish_reasons_and_candidates(connect):
    provider, _ = connect("gemini", _answer("generate_content_max_tokens.json"))
    result = await provider.complete(request(n=2), "g")
    assert [(c.index, c.finish_reason) for c in result.body.choices] == [
        (0, "length"),
        (1, "content_filter"),
    ]


async def test_blocked_prompt_is_a_content_filter_answer(connect):
    provider, _ = connect("gemini", _answer("blocked_prompt.json"))
    result = await provider.complete(request(), "g")
    assert result.body.choices[0].finish_reason == "content_filter"
    assert result.body.choices[0].message.content is None


async def test_no_candidates_is_malformed(connect):
    provider, _ = connect("gemini", lambda _: json_response(200, {"modelVersion": "x"}))
    with pytest.raises(UpstreamMalformed):
        await provider.complete(request(), "g")


async def test_streaming(connect):
    provider, upstream = connect(
        "gemini", lambda _: stream_response(fixture_text("gemini", "stream.sse"))
    )
    chunks, _ = await collect(provider, request(), "gemini-2.0-flash")

    assert upstream.last.url.path == "/v1beta/models/gemini-2.0-flash:streamGenerateContent"
    assert upstream.last.url.params["alt"] == "sse"
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.choices[0].delta.role is None for c in chunks[1:-1])
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "The sky is blue because of Rayleigh scattering."
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.model_dump() == {
        "prompt_tokens": 8,
        "completion_tokens": 12,
        "total_tokens": 20,
    }


async def test_streamed_function_call(connect):
    sse = fixture_text("gemini", "stream_function_call.sse")
    provider, _ = connect("gemini", lambda _: stream_response(sse))
    chunks, _ = await collect(provider, request(tools=[WEATHER_TOOL]))
    assert chunks[0].choices[0].delta.content == "Let me check."
    call_chunk = chunks[1].choices[0]
    assert call_chunk.finish_reason == "tool_calls"
    calls = call_chunk.delta.tool_calls or []
    assert calls[0].index == 0
    assert calls[0].type == "function"
    assert calls[0].function == {"name": "get_weather", "arguments": '{"location":"Paris"}'}
    assert chunks[-1].usage is not None
