"""The exact cache's key: every output-changing field changes it; nothing else does."""

from __future__ import annotations

from typing import Any

import pytest

from relay_core.answers.cache_key import request_digest
from relay_core.schemas.chat import ChatCompletionRequest
from relay_core.settings import Settings

SETTINGS = Settings()
BASE: dict[str, Any] = {
    "model": "chat",
    "messages": [{"role": "user", "content": "What is 2 + 2?"}],
    "temperature": 0,
}
TOOL = {"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}
SCHEMA = {"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "object"}}}


def digest(body: dict[str, Any], settings: Settings = SETTINGS, **kw: Any) -> str:
    return request_digest(ChatCompletionRequest.model_validate(body), settings, **kw)


# One change per output-affecting field (a pair of requests differing in it alone).
CHANGES: list[tuple[str, dict[str, Any]]] = [
    ("model", {"model": "other"}),
    ("model_type", {"model_type": "code"}),
    ("model_scale", {"model_scale": "small"}),
    ("model_name", {"model_name": "llama"}),
    ("messages", {"messages": [{"role": "user", "content": "What is 2 + 3?"}]}),
    ("role", {"messages": [{"role": "system", "content": "What is 2 + 2?"}]}),
    ("extra message", {"messages": [*BASE["messages"], {"role": "user", "content": "?"}]}),
    ("temperature", {"temperature": 0.5}),
    ("top_p", {"top_p": 0.9}),
    ("max_tokens", {"max_tokens": 10}),
    ("max_completion_tokens", {"max_completion_tokens": 10}),
    ("stop", {"stop": ["\n"]}),
    ("n", {"n": 2}),
    ("seed", {"seed": 7}),
    ("presence_penalty", {"presence_penalty": 0.5}),
    ("frequency_penalty", {"frequency_penalty": 0.5}),
    ("tools", {"tools": [TOOL]}),
    ("tool_choice", {"tool_choice": "required"}),
    ("response_format", {"response_format": {"type": "json_object"}}),
    ("response_format schema", {"response_format": SCHEMA}),
    ("context_mode", {"context_mode": "static"}),
    ("an unknown field", {"logit_bias": {"50256": -100}}),
    ("top_k (extra)", {"top_k": 5}),
]


@pytest.mark.parametrize(("field", "change"), CHANGES, ids=[c[0] for c in CHANGES])
def test_each_output_field_changes_the_key(field: str, change: dict[str, Any]) -> None:
    assert digest({**BASE, **change}) != digest(BASE), field


def test_no_two_changes_share_a_key() -> None:
    keys = {digest({**BASE, **change}) for _, change in CHANGES}
    assert len(keys) == len(CHANGES)


@pytest.mark.parametrize(
    "change",
    [
        {"stream": True},
        {"stream_options": {"include_usage": True}},
        {"user": "someone"},
        {"metadata": {"run": "3"}},
        {"store": True},
    ],
)
def test_delivery_fields_do_not_change_the_key(change: dict[str, Any]) -> None:
    assert digest({**BASE, **change}) == digest(BASE)


def test_the_order_of_json_keys_does_not_matter() -> None:
    reordered = {"temperature": 0, "messages": BASE["messages"], "model": "chat"}
    assert digest(reordered) == digest(BASE)


def test_fallback_and_answer_changing_settings_are_in_the_key() -> None:
    assert digest(BASE, fallback_any=True) != digest(BASE)
    assert digest(BASE, Settings(style_directive="Be terse.")) != digest(BASE)
    assert digest(BASE, Settings(normalize_output=True)) != digest(BASE)
