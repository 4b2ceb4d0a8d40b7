"""An upstream that counts the prompt over its window (its ``context_length_exceeded``): the
client sees its code and param, and Relay re-fits once with the upstream's own figure.

The simulator's "denser tokenizer" counts one token per character (four times its default),
far more than Relay's estimate, with a 400-token window: Relay's first fit looks fine to
Relay and is refused upstream.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from relay_core.catalogue.models import Limits, ModelConfig, ProviderConfig
from relay_core.dispatch.envelope import Kind
from relay_core.errors import RelayError
from relay_core.schemas.chat import ChatCompletionRequest
from relay_sim import SimConfig, SimServer
from tests.unit.dispatch.support import MODEL, answer, build, done, forward

WINDOW = 400


def _sim(window: int) -> SimConfig:
    model = {"id": MODEL, "context_window": window}
    return SimConfig.model_validate(
        {"providers": [{"name": "dense", "api": "openai", "token_density": 4.0, "models": [model]}]}
    )


@pytest.fixture
def dense() -> Iterator[SimServer]:
    with SimServer(_sim(WINDOW)) as server:
        yield server


@pytest.fixture
def tiny() -> Iterator[SimServer]:
    with SimServer(_sim(40)) as server:  # nothing this conversation pins fits 40 tokens
        yield server


def _config(sim: SimServer) -> ProviderConfig:
    model = ModelConfig(id=MODEL, context_window=WINDOW, max_output_tokens=64)
    return ProviderConfig(
        name="dense",
        api="openai",
        base_url=sim.base_url("dense"),
        timeout_s=5,
        limits=Limits(),
        models=[model],
    )


def _conversation() -> list[dict[str, str]]:
    roles = ["user", "assistant"]
    return [
        {"role": roles[i % 2], "content": f"hello world this is message number {i}"}
        for i in range(31)
    ]


async def test_the_upstream_count_trims_and_retries_once(
    dense: SimServer, http: httpx.AsyncClient
) -> None:
    farm = build(http, [_config(dense)])
    env = farm.envelope("dense").model_copy(
        update={
            "request": ChatCompletionRequest.model_validate(
                {"model": "chat", "messages": _conversation()}
            )
        }
    )
    again = forward(await farm.visit(env)).envelope
    assert again.index == 0 and again.token_scale is not None and again.token_scale > 2
    refused = RelayError.from_info(again.failures[-1])
    assert (refused.status_code, refused.code, refused.param) == (
        400,
        "context_length_exceeded",
        "messages",
    )
    reply = done(await farm.visit(again))
    assert reply.ok, reply.error
    assert reply.completion is not None
    assert answer(reply)["usage"]["prompt_tokens"] <= WINDOW  # as the upstream counted it


async def test_a_second_refusal_reaches_the_client_with_its_code_and_param(
    tiny: SimServer, http: httpx.AsyncClient
) -> None:
    farm = build(http, [_config(tiny)])
    # Already re-fitted once (token_scale set): the upstream's second no is the answer.
    env = farm.envelope("dense", kind=Kind.interactive, text="hello " * 30, token_scale=1.0)
    reply = done(await farm.visit(env))
    assert reply.error is not None
    error = RelayError.from_info(reply.error)
    assert (error.status_code, error.code, error.param) == (
        400,
        "context_length_exceeded",
        "messages",
    )
