"""What users of OpenAI-compatible servers feel through Relay (issue 14, item 8).

The simulator plays llama.cpp's server (``ignores_max_completion_tokens``, ``ignores_n``,
``repeats_tool_call_ids``, ``traceback_in_errors``); the catalogue marks it
``max_tokens_only`` and ``single_choice``. ``plain`` has the same quirks and no flags (what
a client got before); ``gem`` is a Gemini provider, whose completions Relay builds itself. The
client is the official ``openai`` SDK, as users run it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageParam
from openai.types.shared_params.response_format_json_schema import JSONSchema

from tests.support.farm import Farm, FarmFactory, model, sim_provider

pytestmark = pytest.mark.integration

QUIRKS = {
    "ignores_max_completion_tokens": True,
    "ignores_n": True,
    "repeats_tool_call_ids": True,
    "traceback_in_errors": True,
}
LONG = "tell me everything " * 20
WEATHER: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
}
LEAKS = ("/usr/lib", "site-packages", "C:\\", "smollm2.gguf", "Users\\runner")


def providers(sim_url: str) -> list[dict[str, Any]]:
    llama = sim_provider("llama", "openai", sim_url, [model("smol")])
    llama.update(max_tokens_only=True, single_choice=True)
    plain = sim_provider("plain", "openai", sim_url, [model("smol")])
    gem = sim_provider("gem", "gemini", sim_url, [model("gm")])
    return [llama, plain, gem]


@pytest.fixture
def farm(make_farm: FarmFactory) -> Farm:
    farm = make_farm(providers)
    farm.sim("llama", **QUIRKS)
    farm.sim("plain", **QUIRKS)
    return farm


@pytest.fixture
def client(farm: Farm) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{farm.url}/v1", api_key="unused", max_retries=0) as client:
        yield client


def ask(model_name: str, text: str = LONG) -> dict[str, Any]:
    return {"model": model_name, "messages": [{"role": "user", "content": text}]}


def user(text: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


def test_max_completion_tokens_is_honoured_by_a_server_that_reads_only_max_tokens(
    farm: Farm, client: openai.OpenAI
) -> None:
    # Without the flag the server ignores the cap and answers at length (LangChain's 2,026
    # tokens for max_tokens=5 against llama.cpp's server).
    unflagged = client.chat.completions.create(**ask("plain/smol"), max_completion_tokens=5)
    assert unflagged.usage is not None and unflagged.usage.completion_tokens > 5
    answer = client.chat.completions.create(**ask("llama/smol"), max_completion_tokens=5)
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage is not None and answer.usage.completion_tokens == 5
    streamed = client.chat.completions.create(
        **ask("llama/smol"), max_completion_tokens=5, stream=True
    )
    chunks = list(streamed)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(text) == 5 * 4 and chunks[-1].choices[0].finish_reason == "length"


def test_several_choices_are_refused_clearly_by_a_single_choice_server(
    farm: Farm, client: openai.OpenAI
) -> None:
    before = farm.sim_stats()["providers"]["llama"]["requests"]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**ask("llama/smol", "hi"), n=2)
    error = caught.value
    assert error.param == "n" and error.type == "invalid_request_error"
    assert "one choice" in error.message
    assert farm.sim_stats()["providers"]["llama"]["requests"] == before  # nothing sent
    assert len(client.chat.completions.create(**ask("llama/smol", "hi"), n=1).choices) == 1
    # What a client got without the flag: one choice for n=2, silently.
    assert len(client.chat.completions.create(**ask("plain/smol", "hi"), n=2).choices) == 1
    farm.sim("plain", ignores_n=False)  # a server that honours n answers as many as asked
    assert len(client.chat.completions.create(**ask("plain/smol", "hi"), n=2).choices) == 2


def test_streamed_tool_call_ids_and_names_come_once(farm: Farm, client: openai.OpenAI) -> None:
    for target in ("llama/smol", "plain/smol"):  # the flags play no part: every stream
        stream = client.chat.completions.create(
            model=target,
            messages=user("[call:get_weather] in Paris?"),
            tools=[WEATHER],
            stream=True,
        )
        deltas = [tc for c in stream if c.choices for tc in c.choices[0].delta.tool_calls or ()]
        assert len(deltas) == 3  # the name, then two argument fragments
        assert {d.index for d in deltas} == {0}
        assert [d.id is not None for d in deltas] == [True, False, False]
        assert [d.type for d in deltas] == ["function", None, None]
        names = "".join(d.function.name or "" for d in deltas if d.function)
        assert names == "get_weather"  # not get_weatherget_weatherget_weather
        arguments = "".join(d.function.arguments or "" for d in deltas if d.function)
        assert arguments == "{}"


def test_an_upstreams_file_paths_never_reach_the_client(farm: Farm, client: openai.OpenAI) -> None:
    farm.sim("llama", fails_on=["json_schema"])
    client.chat.completions.create(**ask("llama/smol", "hi"))  # it answers other requests
    schema: JSONSchema = {"name": "x", "schema": {"type": "object"}}
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="llama/smol",
            messages=user("hi"),
            response_format={"type": "json_schema", "json_schema": schema},
        )
    farm.sim("plain", error_rate=1.0)
    with pytest.raises(openai.APIStatusError) as failed:
        client.chat.completions.create(**ask("plain/smol", "hi"))
    for caught in (refused.value, failed.value):
        message = caught.message
        assert "Traceback" in message and "[path]" in message, message
        assert not any(leak in message for leak in LEAKS), message
        assert not any(leak in caught.response.text for leak in LEAKS), caught.response.text


def test_non_streamed_answers_keep_openais_null_fields(farm: Farm, client: openai.OpenAI) -> None:
    with farm.client() as http:
        for target in ("llama/smol", "gem/gm"):  # passed through, and built by Relay
            body = http.post("/v1/chat/completions", json=ask(target, "hi")).json()
            choice = body["choices"][0]
            assert "logprobs" in choice and choice["logprobs"] is None, body
            assert "refusal" in choice["message"] and choice["message"]["refusal"] is None
        tool = http.post(
            "/v1/chat/completions", json={**ask("gem/gm", "[call:get_weather]"), "tools": [WEATHER]}
        ).json()
        message = tool["choices"][0]["message"]
        assert message["content"] is None and message["tool_calls"], tool
