"""Token costs learned from the upstream's usage (issue 13, item 2): a provider whose tokenizer
counts a prompt as four times Relay's estimate is admitted against its TPM at its own count, and
one that counts usage is reserved the output its answers really produce, not their cap."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from relay_core.catalogue.models import Limits, ModelConfig, ProviderConfig
from relay_core.limits import Reason
from relay_core.schemas.chat import ChatCompletionRequest
from relay_sim import SimConfig, SimServer
from tests.unit.dispatch.support import MODEL, build, done

TEXT = "the quick brown fox jumps over the lazy dog " * 8  # ~72 tokens by Relay's count


@pytest.fixture
def dense() -> Iterator[SimServer]:
    config = SimConfig.model_validate(
        {
            "providers": [
                {"name": "dense", "api": "openai", "token_density": 4.0, "models": [{"id": MODEL}]},
                {
                    "name": "short",
                    "api": "openai",
                    "tpm_counting": "usage",
                    "models": [{"id": MODEL}],
                },
            ]
        }
    )
    with SimServer(config) as server:
        yield server


def _config(sim: SimServer, name: str = "dense", **fields: object) -> ProviderConfig:
    return ProviderConfig.model_validate(
        {
            "name": name,
            "api": "openai",
            "base_url": sim.base_url(name),
            "timeout_s": 5,
            "limits": Limits(tpm=1_000_000),
            "models": [ModelConfig(id=MODEL)],
            **fields,
        }
    )


async def test_the_upstreams_prompt_count_is_learned_and_taken_at_admission(
    dense: SimServer, http: httpx.AsyncClient
) -> None:
    farm = build(http, [_config(dense)])
    target = farm.target("dense")
    assert farm.state.cost(target).prompt_ratio == 1.0  # nothing known yet
    for _ in range(3):
        reply = done(await farm.visit(farm.envelope("dense", text=TEXT)))
        assert reply.ok
    ratio = farm.state.cost(target).prompt_ratio
    assert 3.0 <= ratio <= 4.0  # the simulator counts four times the characters' tokens


async def test_a_provider_counting_usage_is_reserved_what_its_answers_use(
    dense: SimServer, http: httpx.AsyncClient
) -> None:
    farm = build(http, [_config(dense, "short", tpm_counting="usage")])
    target = farm.target("short")
    request = ChatCompletionRequest.model_validate(
        {"model": MODEL, "messages": [{"role": "user", "content": "q"}], "max_tokens": 500}
    )
    assert farm.state.estimate(target, request, 10) == 10 + 500  # nothing known: the cap
    for _ in range(3):
        env = farm.envelope("short").model_copy(update={"request": request})
        reply = done(await farm.visit(env))
        assert reply.ok and reply.completion is not None and reply.completion.usage is not None
        answer = reply.completion.usage.completion_tokens
    # The simulator's answers are a few tokens long: that is what is reserved now.
    assert farm.state.estimate(target, request, 10) <= 10 + 2 * answer
    # And each call's reservation was settled to its real usage: the bucket holds what the
    # prompts and answers did not use (a fresh bucket holds one second of 1,000,000 TPM).
    level = next(lv for lv in (await farm.peek("short")).levels if lv.reason is Reason.tpm)
    assert level.available >= level.limit - 3 * 50
