"""The API's side of fitting: counted once, refused early, the output cap named."""

from __future__ import annotations

import pytest

from relay_core.catalogue.models import ModelConfig
from relay_core.context.count import count_each
from relay_core.context.prepare import fit_candidates
from relay_core.errors import ContextLengthExceeded, InvalidRequest
from relay_core.schemas.chat import ChatCompletionRequest
from relay_core.settings import Settings

SMALL = ModelConfig(id="small", context_window=8192)
LARGE = ModelConfig(id="large", context_window=128_000)


def _request(text: str, **extra: object) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "chat", "messages": [{"role": "user", "content": text}], **extra}
    )


async def test_counts_once_and_keeps_the_candidates_that_fit() -> None:
    request = _request("word " * 20_000)  # ~20,000 tokens: too long for 8K only
    kept, costs = await fit_candidates(request, [SMALL, LARGE], lambda m: m, Settings())
    assert kept == [LARGE]
    assert costs == count_each(request.messages)


async def test_a_prompt_over_every_window_is_refused_from_its_length() -> None:
    request = _request("x" * 8_000_000)  # at least 1,000,000 tokens at 1/8 token a character
    with pytest.raises(ContextLengthExceeded) as caught:
        await fit_candidates(request, [SMALL, LARGE], lambda m: m, Settings())
    assert caught.value.param == "messages"
    assert "at least 1000" in caught.value.message


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
async def test_an_output_cap_over_every_window_names_itself_and_the_maximum(field: str) -> None:
    request = _request("hello", **{field: 10_000_000})
    with pytest.raises(InvalidRequest) as caught:
        await fit_candidates(request, [SMALL, LARGE], lambda m: m, Settings())
    assert caught.value.param == field
    assert not isinstance(caught.value, ContextLengthExceeded)
    allowed = int(caught.value.message.split(f"Lower {field} to ")[1].split()[0])
    assert int(LARGE.context_window * 0.92) - 20 < allowed < LARGE.context_window
