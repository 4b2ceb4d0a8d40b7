from __future__ import annotations

import ssl
from typing import get_args

import httpx
import pytest

from relay_core.catalogue.models import ApiFamily, Catalogue
from relay_core.providers._transport import SHARDS, ShardedTransport
from relay_core.providers.anthropic import AnthropicProvider
from relay_core.providers.gemini import GeminiProvider
from relay_core.providers.ollama import OllamaProvider
from relay_core.providers.openai import OpenAIProvider
from relay_core.providers.registry import (
    FAMILIES,
    build_provider,
    build_providers,
    make_http_client,
)
from tests.unit.providers.support import fixture_json, json_response, make_config, request


def test_every_catalogue_family_has_a_client():
    assert set(FAMILIES) == set(get_args(ApiFamily))


def test_families_are_read_only():
    with pytest.raises(TypeError):
        FAMILIES["openai"] = GeminiProvider  # type: ignore[index]


@pytest.mark.parametrize(
    ("api", "cls"),
    [
        ("openai", OpenAIProvider),
        ("gemini", GeminiProvider),
        ("anthropic", AnthropicProvider),
        ("ollama", OllamaProvider),
    ],
)
async def test_build_provider_picks_the_family(api, cls):
    async with httpx.AsyncClient() as http:
        provider = build_provider(make_config(api), http, "k")
    assert isinstance(provider, cls)
    assert provider.config.api == api
    assert repr(provider) == f"{cls.__name__}('test-{api}')"


async def test_build_providers_skips_missing_keys_and_passes_the_rest(monkeypatch):
    monkeypatch.setenv("RELAY_TEST_GROQ_KEY", "groq-key")
    monkeypatch.delenv("RELAY_TEST_MISSING_KEY", raising=False)
    catalogue = Catalogue(
        providers=[
            make_config("openai", name="groq", api_key_env="RELAY_TEST_GROQ_KEY"),
            make_config("gemini", name="gemini", api_key_env="RELAY_TEST_MISSING_KEY"),
            make_config("ollama", name="local", api_key_env=None),
        ]
    )
    seen: list[httpx.Request] = []

    def respond(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return json_response(200, fixture_json("openai", "completion.json"))

    async with httpx.AsyncClient(transport=httpx.MockTransport(respond)) as http:
        providers = build_providers(catalogue, http)
        assert sorted(providers) == ["groq", "local"]
        await providers["groq"].complete(request(), "llama")
    assert seen[0].headers["authorization"] == "Bearer groq-key"


async def test_make_http_client_pools_and_times_out():
    client = make_http_client(transport=httpx.MockTransport(lambda _: httpx.Response(204)))
    async with client:
        assert client.timeout == httpx.Timeout(60.0, connect=5.0)
        assert (await client.get("http://upstream.test/")).status_code == 204


async def test_make_http_client_shares_an_ssl_context_and_the_limits_among_its_shards():
    context = ssl.create_default_context()
    async with make_http_client(ssl_context=context, max_connections=64) as client:
        transport = client._transport
        assert isinstance(transport, ShardedTransport) and len(transport.shards) == SHARDS
        pools = [shard._pool for shard in transport.shards]  # type: ignore[attr-defined]
        assert all(pool._ssl_context is context for pool in pools)
        assert sum(pool._max_connections for pool in pools) == 64
    async with make_http_client(ssl_context=context, max_connections=4) as client:
        assert isinstance(client._transport, ShardedTransport)
        (pool,) = {shard._pool._max_connections for shard in client._transport.shards}  # type: ignore[attr-defined]
        assert len(client._transport.shards) == 4 and pool == 1


async def test_a_sharded_transport_hands_requests_to_each_shard_in_turn():
    served: list[int] = []

    def shard(i: int) -> httpx.MockTransport:
        def respond(_: httpx.Request) -> httpx.Response:
            served.append(i)
            return httpx.Response(204)

        return httpx.MockTransport(respond)

    async with httpx.AsyncClient(transport=ShardedTransport([shard(i) for i in range(3)])) as c:
        for _ in range(7):
            assert (await c.get("http://upstream.test/")).status_code == 204
    assert served == [0, 1, 2, 0, 1, 2, 0]
