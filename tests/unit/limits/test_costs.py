"""Token costs learned from real usage (issue 13, item 2): what a call is reserved against the
token limits, per provider/model, and how workers share what they learned. The store runs
against memory and the real Redis (one contract, both backends)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from relay_core.catalogue.models import ModelConfig, ProviderConfig
from relay_core.limits.costs import (
    SYNC_S,
    CostSample,
    CostStore,
    LearnedCosts,
    MemoryCosts,
    RedisCosts,
    TokenCost,
    fold,
)
from relay_core.schemas.chat import ChatCompletionRequest
from relay_core.tokens import estimate_request_tokens
from tests.unit.limits._support import REDIS_URL, START, drop_prefix


def _sample(prompt: int = 100, completion: int = 10, *, reserves: bool = False) -> CostSample:
    return CostSample(
        prompt_counted=100,
        output_cap=200,
        prompt_tokens=prompt,
        completion_tokens=completion,
        reserves=reserves,
    )


def _provider(counting: str) -> ProviderConfig:
    return ProviderConfig.model_validate(
        {
            "name": "p",
            "api": "openai",
            "base_url": "https://p.example.com/v1",
            "tpm_counting": counting,
            "models": [{"id": "m"}],
        }
    )


REQUEST = ChatCompletionRequest.model_validate(
    {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 200}
)


@pytest.fixture
def prefix() -> str:
    return f"test:costs:{uuid.uuid4().hex}"


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
async def store(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[CostStore]:
    if request.param == "memory":
        yield MemoryCosts()
        return
    client = Redis.from_url(REDIS_URL)
    try:
        yield RedisCosts(client)
    finally:
        await drop_prefix(client, prefix)
        await client.aclose()


def test_a_sample_teaches_the_prompt_ratio_the_output_ratio_and_the_charged_tokens() -> None:
    usage = _sample(prompt=150, completion=20).values()
    assert usage == {"prompt_ratio": 1.5, "output_ratio": 0.1, "line_tokens": 170.0}
    # A provider that reserves max_tokens charges the whole cap, whatever the answer.
    assert _sample(prompt=150, completion=20, reserves=True).values()["line_tokens"] == 350.0
    # A short prompt says nothing about the tokenizer.
    short = CostSample(
        prompt_counted=3, output_cap=200, prompt_tokens=9, completion_tokens=5, reserves=False
    )
    assert "prompt_ratio" not in short.values()


def test_the_first_samples_set_the_figures_and_later_ones_move_them_by_their_weight() -> None:
    first = fold(TokenCost(), {"output_ratio": 0.1, "line_tokens": 120.0}, 1)
    assert (first.output_ratio, first.line_tokens, first.samples) == (0.1, 120.0, 1)
    assert first.prompt_ratio == 1.0  # never sampled: the default
    later = fold(first, {"output_ratio": 0.5}, 1)
    assert later.output_ratio == pytest.approx(0.1 + 0.2 * 0.4)
    # Five samples at once weigh as five one after another.
    one_by_one = first
    for _ in range(5):
        one_by_one = fold(one_by_one, {"output_ratio": 0.5}, 1)
    assert fold(first, {"output_ratio": 0.5}, 5).output_ratio == pytest.approx(
        one_by_one.output_ratio
    )


def test_a_provider_counting_usage_is_reserved_the_learned_output_and_a_reserving_one_the_cap() -> (
    None
):
    model = ModelConfig(id="m")
    learned = fold(TokenCost(), {"prompt_ratio": 2.0, "output_ratio": 0.05}, 3)
    usage, reserve = _provider("usage"), _provider("reserve")
    assert estimate_request_tokens(50, REQUEST, model, provider=usage, cost=learned) == 100 + 10
    assert estimate_request_tokens(50, REQUEST, model, provider=reserve, cost=learned) == 100 + 200
    # Nothing learned yet: the whole cap, for both.
    assert estimate_request_tokens(50, REQUEST, model, provider=usage, cost=TokenCost()) == 250
    # An empty answer still reserves a token of output.
    empty = fold(TokenCost(), {"output_ratio": 0.0}, 1)
    assert estimate_request_tokens(50, REQUEST, model, provider=usage, cost=empty) == 51


async def test_workers_share_what_they_learn_through_the_store(
    store: CostStore, prefix: str
) -> None:
    a, b = LearnedCosts(store, prefix), LearnedCosts(store, prefix)
    for _ in range(4):
        a.observe("p", "m", _sample(prompt=200, completion=10))
    # a knows at once; b once a has merged and b has read.
    assert a.get("p", "m").output_ratio == pytest.approx(0.05)
    assert b.get("p", "m").samples == 0
    await a.sync([("p", "m")], START)
    await b.sync([("p", "m")], START)
    seen = b.get("p", "m")
    assert seen.samples == 4
    assert seen.prompt_ratio == pytest.approx(2.0)
    assert seen.output_ratio == pytest.approx(0.05)
    assert seen.line_tokens == pytest.approx(210.0)
    # b's own samples merge with a's: the figure moves by the weight of b's samples.
    b.observe("p", "m", _sample(prompt=200, completion=50))
    await b.sync([("p", "m")], START + SYNC_S / 2)  # too soon: nothing merged yet
    (kept,) = await store.read([f"{prefix}:p/m:cost"])
    assert kept.samples == 4
    await b.sync([("p", "m")], START + SYNC_S)
    await a.sync([("p", "m")], START + SYNC_S)
    assert a.get("p", "m").samples == 5
    assert a.get("p", "m").output_ratio == pytest.approx(0.05 + 0.2 * (0.25 - 0.05))


async def test_memory_and_redis_fold_alike(prefix: str) -> None:
    client = Redis.from_url(REDIS_URL)
    try:
        memory, redis = MemoryCosts(), RedisCosts(client)
        key = f"{prefix}:p/m:cost"
        batches = [({"output_ratio": 0.3, "line_tokens": 90.0}, 2), ({"prompt_ratio": 1.7}, 1)]
        batches += [({"output_ratio": 0.9, "prompt_ratio": 0.8, "line_tokens": 400.0}, 7)]
        for means, count in batches:
            assert await memory.merge(key, means, count) == await redis.merge(key, means, count)
    finally:
        await drop_prefix(client, prefix)
        await client.aclose()


test_memory_and_redis_fold_alike = pytest.mark.integration(test_memory_and_redis_fold_alike)
