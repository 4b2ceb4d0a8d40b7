"""Token costs learned from the upstream's usage (issue 13, item 2): a provider whose tokenizer
counts a prompt as four times Relay's estimate is admitted against its TPM at its own count."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from relay_core.catalogue.models import Limits, ModelConfig, ProviderConfig
from relay_sim import SimConfig, SimServer
from tests.unit.dispatch.support import MODEL, build, done

TEXT = "the quick brown fox jumps over the lazy dog " * 8  # ~72 tokens by Relay's count


@pytest.fixture
def dense() -> Iterator[SimServer]:
    config = SimConfig.model_validate(
        {
            "providers": [
                {"name": "dense", "api": "openai", "token_density": 4.0, "models": [{"id": MODEL}]}
            ]
        }
    )
    with SimServer(config) as server:
        yield server


def _config(sim: SimServer) -> ProviderConfig:
    return ProviderConfig(
        name="dense",
        api="openai",
        base_url=sim.base_url("dense"),
        timeout_s=5,
        limits=Limits(tpm=1_000_000),
        models=[ModelConfig(id=MODEL)],
    )


async def test_the_upstreams_prompt_count_is_learned_and_taken_at_admission(
    dense: SimServer, http: httpx.AsyncClient
) -> None:
    farm = build(http, [_config(dense)])
    target = farm.target("dense")
    assert farm.state.prompt_ratio(target) == 1.0  # nothing known yet
    for _ in range(3):
        reply = done(await farm.visit(farm.envelope("dense", text=TEXT)))
        assert reply.ok
    ratio = farm.state.prompt_ratio(target)
    assert 3.0 <= ratio <= 4.0  # the simulator counts four times the characters' tokens
