"""Each family's embeddings wire mapping, over httpx.MockTransport."""

from __future__ import annotations

from typing import Any

import pytest

from relay_core.errors import InvalidRequest, RateLimited, UpstreamMalformed
from relay_core.providers.base import EmbeddingProvider
from relay_core.schemas.embeddings import EmbeddingRequest
from tests.unit.providers.support import json_response


def embed_request(**fields: Any) -> EmbeddingRequest:
    return EmbeddingRequest.model_validate({"model": "alias", "input": ["a", "b"], **fields})


def embedder(connect: Any, api: str, respond: Any, **config: Any) -> tuple[Any, Any]:
    provider, upstream = connect(api, respond, **config)
    assert isinstance(provider, EmbeddingProvider)
    return provider, upstream


async def test_openai_sends_the_body_asks_floats_and_reads_in_index_order(connect):
    answer = {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 1, "embedding": [0.0, 1.0]},
            {"object": "embedding", "index": 0, "embedding": [1.0, 0.0]},
        ],
        "usage": {"prompt_tokens": 3, "total_tokens": 3},
    }
    provider, upstream = embedder(connect, "openai", lambda _: json_response(200, answer))
    got = await provider.embed(embed_request(encoding_format="base64", user="u1"), "m", None)
    assert str(upstream.last.url).endswith("/embeddings")
    assert upstream.body() == {
        "model": "m",
        "input": ["a", "b"],
        "user": "u1",
        "encoding_format": "float",
    }
    assert got.vectors == [[1.0, 0.0], [0.0, 1.0]]
    assert got.prompt_tokens == 3


async def test_openai_passes_dimensions_and_token_ids(connect):
    answer = {"data": [{"index": 0, "embedding": [0.5]}]}
    provider, upstream = embedder(connect, "openai", lambda _: json_response(200, answer))
    got = await provider.embed(embed_request(input=[1, 2, 3]), "m", 1)
    assert upstream.body()["dimensions"] == 1
    assert upstream.body()["input"] == [1, 2, 3]
    assert got.prompt_tokens is None


async def test_openai_errors_translate_by_table(connect):
    error = {"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}}
    provider, _ = embedder(connect, "openai", lambda _: json_response(429, error))
    with pytest.raises(RateLimited):
        await provider.embed(embed_request(), "m", None)


async def test_gemini_one_input_is_embed_content(connect):
    answer = {"embedding": {"values": [0.1, 0.2]}}
    provider, upstream = embedder(connect, "gemini", lambda _: json_response(200, answer))
    got = await provider.embed(embed_request(input="hello"), "text-embedding-004", 2)
    assert str(upstream.last.url).endswith("/models/text-embedding-004:embedContent")
    assert upstream.body() == {
        "content": {"parts": [{"text": "hello"}]},
        "outputDimensionality": 2,
    }
    assert got.vectors == [[0.1, 0.2]]
    assert got.prompt_tokens is None


async def test_gemini_several_inputs_are_batch_embed_contents(connect):
    answer = {"embeddings": [{"values": [1.0]}, {"values": [2.0]}]}
    provider, upstream = embedder(connect, "gemini", lambda _: json_response(200, answer))
    got = await provider.embed(embed_request(), "e", None)
    assert str(upstream.last.url).endswith("/models/e:batchEmbedContents")
    assert upstream.body() == {
        "requests": [
            {"model": "models/e", "content": {"parts": [{"text": "a"}]}},
            {"model": "models/e", "content": {"parts": [{"text": "b"}]}},
        ]
    }
    assert got.vectors == [[1.0], [2.0]]


@pytest.mark.parametrize("api", ["gemini", "ollama"])
async def test_text_only_families_refuse_token_ids_before_sending(connect, api):
    provider, upstream = embedder(connect, api, lambda _: json_response(200, {}), key=None)
    with pytest.raises(InvalidRequest) as info:
        await provider.embed(embed_request(input=[[1, 2], [3]]), "e", None)
    assert info.value.param == "input"
    assert upstream.requests == []


async def test_gemini_refuses_more_than_its_batch_takes(connect):
    provider, upstream = embedder(connect, "gemini", lambda _: json_response(200, {}))
    with pytest.raises(InvalidRequest):
        await provider.embed(embed_request(input=["x"] * 101), "e", None)
    assert upstream.requests == []


async def test_ollama_maps_to_api_embed(connect):
    answer = {"model": "nomic", "embeddings": [[0.3], [0.4]], "prompt_eval_count": 4}
    provider, upstream = embedder(connect, "ollama", lambda _: json_response(200, answer), key=None)
    got = await provider.embed(embed_request(), "nomic", 1)
    assert str(upstream.last.url) == "http://127.0.0.1:11434/api/embed"
    assert upstream.body() == {"model": "nomic", "input": ["a", "b"], "dimensions": 1}
    assert got.vectors == [[0.3], [0.4]]
    assert got.prompt_tokens == 4


@pytest.mark.parametrize(
    ("api", "answer"),
    [
        ("openai", {"data": [{"index": 0, "embedding": ["x"]}]}),
        ("openai", {"choices": []}),
        ("gemini", {"embedding": {"values": []}}),
        ("ollama", {"embeddings": "nope"}),
    ],
)
async def test_answers_without_vectors_are_malformed(connect, api, answer):
    provider, _ = embedder(connect, api, lambda _: json_response(200, answer), key=None)
    with pytest.raises(UpstreamMalformed):
        await provider.embed(embed_request(), "e", None)


def test_anthropic_serves_no_embeddings(connect):
    provider, _ = connect("anthropic", lambda _: json_response(200, {}))
    assert not isinstance(provider, EmbeddingProvider)
