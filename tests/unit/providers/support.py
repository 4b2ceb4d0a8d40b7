"""Test doubles for provider clients: an ``httpx.MockTransport`` that records what it was sent,
fixture loading, and the rich request every family's mapping test sends."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest

from relay_core.catalogue.models import ModelConfig, ProviderConfig
from relay_core.providers.base import Provider
from relay_core.providers.registry import build_provider
from relay_core.schemas.chat import ChatCompletionChunk, ChatCompletionRequest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "providers"
SECRET = "sk-relay-test-9f8e7d6c5b4a39281706"

BASE_URLS = {
    "openai": "https://api.groq.com/openai/v1",
    "gemini": "https://generativelanguage.googleapis.com/v1beta",
    "anthropic": "https://api.anthropic.com",
    "ollama": "http://127.0.0.1:11434",
}


def fixture_text(family: str, name: str) -> str:
    return (FIXTURES / family / name).read_text()


def fixture_json(family: str, name: str) -> Any:
    return json.loads(fixture_text(family, name))


def make_config(api: str, **overrides: Any) -> ProviderConfig:
    fields: dict[str, Any] = {
        "name": f"test-{api}",
        "api": api,
        "base_url": BASE_URLS[api],
        "api_key_env": "RELAY_TEST_KEY",
        "timeout_s": 30.0,
        "models": [ModelConfig(id="model-a", max_output_tokens=1000), ModelConfig(id="model-b")],
    }
    fields.update(overrides)
    return ProviderConfig(**fields)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def stream_response(text: str, status: int = 200, content_type: str = "text/event-stream"):
    return httpx.Response(status, content=text.encode(), headers={"content-type": content_type})


class BrokenStream(httpx.AsyncByteStream):
    """Sends ``parts`` then fails like a reset connection."""

    def __init__(self, parts: Iterable[bytes]) -> None:
        self._parts = list(parts)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self._parts:
            yield part
        raise httpx.ReadError("connection reset by peer")


class Upstream:
    """A fake provider endpoint: records each request, answers with ``respond``."""

    def __init__(self, respond: Callable[[httpx.Request], httpx.Response]) -> None:
        self.respond = respond
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.respond(request)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def body(self) -> Any:
        return json.loads(self.last.content)


@pytest.fixture
async def connect() -> AsyncIterator[Callable[..., tuple[Provider, Upstream]]]:
    """``connect(api, respond, **config)`` → (provider, upstream) over a MockTransport."""
    clients: list[httpx.AsyncClient] = []

    def make(
        api: str,
        respond: Callable[[httpx.Request], httpx.Response],
        key: str | None = SECRET,
        **config: Any,
    ) -> tuple[Provider, Upstream]:
        upstream = Upstream(respond)
        client = httpx.AsyncClient(transport=httpx.MockTransport(upstream))
        clients.append(client)
        return build_provider(make_config(api, **config), client, key), upstream

    yield make
    for client in clients:
        await client.aclose()


def request(**fields: Any) -> ChatCompletionRequest:
    body: dict[str, Any] = {"model": "alias", "messages": [{"role": "user", "content": "Hi"}]}
    body.update(fields)
    return ChatCompletionRequest.model_validate(body)


async def collect(provider: Provider, req: ChatCompletionRequest, model: str = "model-a"):
    """Every chunk of a streamed answer, and the stream's feedback."""
    async with provider.stream(req, model) as stream:
        chunks: list[ChatCompletionChunk] = [chunk async for chunk in stream]
        return chunks, stream.feedback


WEATHER_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": WEATHER_PARAMETERS,
    },
}
TIME_TOOL = {"type": "function", "function": {"name": "get_time"}}

RICH_MESSAGES: list[dict[str, Any]] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Weather in Paris, and the time?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            },
            {
                "id": "call_2",
                "type": "function",
                "function": {"name": "get_time", "arguments": '{"tz": "Europe/Paris"}'},
            },
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 21}'},
    {"role": "tool", "tool_call_id": "call_2", "content": "14:05"},
    {"role": "user", "content": "Summarise."},
]


def rich_request(**fields: Any) -> ChatCompletionRequest:
    """System, user, assistant tool calls, two tool results, temperature 0, stop, seed, tools."""
    body: dict[str, Any] = {
        "messages": RICH_MESSAGES,
        "temperature": 0,
        "stop": ["END"],
        "seed": 7,
        "max_tokens": 256,
        "tools": [WEATHER_TOOL, TIME_TOOL],
        "tool_choice": "auto",
        "response_format": {"type": "json_object"},
        "model_type": "text",
        "model_scale": "large",
    }
    body.update(fields)
    return request(**body)
