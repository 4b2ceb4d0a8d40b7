"""The judge: what makes a 200 unusable."""

from __future__ import annotations

from typing import Any

from relay_core.profile import Needs, Profile
from relay_core.profile.judge import Flaw, judge, unusable_answer
from relay_core.schemas.chat import ChatCompletion

PLAIN = Profile()
JSON = Profile(needs=Needs(json_output=True))


def answer(content: str | None, finish: str = "stop", args: str | None = None) -> ChatCompletion:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if args is not None:
        message["tool_calls"] = [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": args}}
        ]
    return ChatCompletion.model_validate(
        {"model": "m", "choices": [{"message": message, "finish_reason": finish}]}
    )


def test_a_plain_answer_is_usable() -> None:
    assert judge(PLAIN, answer("Hello!")) is None


def test_an_empty_answer_is_not() -> None:
    assert judge(PLAIN, answer("  \n")) is Flaw.empty
    assert judge(PLAIN, answer(None)) is Flaw.empty
    assert judge(PLAIN, ChatCompletion(model="m", choices=[])) is Flaw.empty


def test_cut_short_counts_only_when_no_cap_was_asked() -> None:
    assert judge(PLAIN, answer("Once upon a", "length")) is Flaw.truncated
    assert judge(Profile(capped=True), answer("Once upon a", "length")) is None


def test_json_must_parse_where_json_was_asked() -> None:
    assert judge(JSON, answer("Sure! The city is Oslo.")) is Flaw.invalid_json
    assert judge(JSON, answer('{"city": "Oslo"}')) is None
    assert judge(PLAIN, answer("Sure! The city is Oslo.")) is None


def test_tool_arguments_must_be_a_json_object() -> None:
    assert judge(PLAIN, answer(None, "tool_calls", '{"city": "Oslo"}')) is None
    assert judge(PLAIN, answer(None, "tool_calls", '{"city": ')) is Flaw.bad_tool_arguments
    assert judge(PLAIN, answer(None, "tool_calls", "[1]")) is Flaw.bad_tool_arguments
    assert judge(JSON, answer(None, "tool_calls", "{}")) is None  # a tool call, not prose


def test_an_unusable_answer_becomes_an_error_naming_the_provider() -> None:
    exc = unusable_answer(JSON, answer("prose"), "prosy", "m")
    assert exc is not None and exc.provider == "prosy" and exc.retryable
    assert "not JSON" in exc.message
    assert unusable_answer(JSON, answer("{}"), "tidy", "m") is None
