"""The profile's axes other than the family: size, needs, determinism, hints."""

from __future__ import annotations

from typing import Any

import pytest

from relay_core.errors import InvalidRequest
from relay_core.profile import Contract, Priority, TaskFamily, parse_priority, profile_request
from relay_core.profile.build import LONG_CONTEXT_TOKENS
from relay_core.schemas.chat import ChatCompletionRequest


def req(text: str = "hi", **extra: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": text}], **extra}
    )


def test_size_counts_the_prompt_and_the_expected_output() -> None:
    p = profile_request(req("x" * 4000))
    assert p.prompt_tokens == 3 + 1000 and p.expected_output_tokens == 300
    assert profile_request(req(max_tokens=50)).expected_output_tokens == 50
    assert profile_request(req(), message_tokens=[42]).prompt_tokens == 45  # counted: used


def test_long_context_past_the_threshold() -> None:
    assert not profile_request(req("word " * 100)).needs.long_context
    long = profile_request(req("x" * 4 * (LONG_CONTEXT_TOKENS + 10)))
    assert long.needs.long_context


def test_contract_and_needs_from_the_request() -> None:
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}
    tools = [{"type": "function", "function": {"name": "f"}}]
    assert profile_request(req(response_format=schema)).contract is Contract.schema
    assert profile_request(req(response_format={"type": "json_object"})).contract is Contract.json
    with_tools = profile_request(req(tools=tools))
    assert with_tools.contract is Contract.tools and with_tools.needs.tools
    image = [{"type": "text", "text": "what?"}, {"type": "image_url", "image_url": {"url": "u"}}]
    assert profile_request(req(image)).needs.vision  # type: ignore[arg-type]


def test_determinism_and_the_callers_hints() -> None:
    assert profile_request(req(temperature=0)).deterministic
    assert profile_request(req(seed=3)).deterministic
    assert not profile_request(req(temperature=0.7)).deterministic
    p = profile_request(req(model_type="coding", model_scale="large"), priority=Priority.high)
    assert (p.model_type, p.model_scale, p.priority) == ("coding", "large", Priority.high)


def test_priority_header() -> None:
    assert parse_priority(None) is Priority.normal
    assert parse_priority(" HIGH ") is Priority.high
    with pytest.raises(InvalidRequest) as bad:
        parse_priority("urgent")
    assert bad.value.param == "x-relay-priority"


def test_the_family_is_read_from_the_instruction_not_the_whole_document() -> None:
    doc = "The committee met on Tuesday. " * 3000
    assert profile_request(req(f"Summarise this report:\n{doc}")).family is TaskFamily.summarisation
    assert profile_request(req("Thanks!")).family is TaskFamily.chat
