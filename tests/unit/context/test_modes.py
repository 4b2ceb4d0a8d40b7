"""Context modes on concrete conversations, and the 400 when nothing can fit."""

from __future__ import annotations

import pytest

from relay_core.catalogue.models import ModelConfig
from relay_core.context import (
    FitOptions,
    can_fit,
    count_messages,
    fit_messages,
    fit_request,
    output_reserve,
    prompt_budget,
)
from relay_core.context.detect import looks_like_code
from relay_core.context.summary import HEADER, summarise
from relay_core.errors import InvalidRequest
from relay_core.schemas.chat import ChatCompletionRequest, Message
from relay_core.settings import ContextMode, Settings

SYSTEM = Message(role="system", content="You are a careful travel assistant.")
FILLER = "We talked about trains, hotels and the weather in several cities for a while. " * 6


def chat(turns: int, last: str = "So, which city should I visit first?") -> list[Message]:
    messages = [SYSTEM]
    for i in range(turns):
        messages.append(Message(role="user", content=f"Question {i}: {FILLER}"))
        messages.append(Message(role="assistant", content=f"Answer {i}: {FILLER}"))
    messages.append(Message(role="user", content=last))
    return messages


def request(messages: list[Message], **extra: object) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [m.model_dump(exclude_none=True) for m in messages], **extra}
    )


def test_dynamic_keeps_the_most_recent_turns_that_fit() -> None:
    messages = chat(30)
    fitted = fit_messages(messages, 1000, FitOptions(ContextMode.dynamic))
    assert fitted is not None
    assert count_messages(fitted) <= 1000 < count_messages(messages)
    assert fitted[0] == SYSTEM and fitted[-1] == messages[-1]
    assert fitted[1].role == "user"
    # Contiguous and most recent: the last turns before the question are all there.
    assert fitted[-3:-1] == messages[-3:-1]


def test_static_keeps_at_most_n_messages_of_history() -> None:
    messages = chat(30)
    budget = count_messages([SYSTEM, *messages[-5:]]) + 100
    fitted = fit_messages(messages, budget, FitOptions(ContextMode.static, 4))
    assert fitted == [SYSTEM, *messages[-5:]]


def test_reservoir_summarises_what_it_drops_within_the_budget() -> None:
    messages = chat(20)
    messages[1] = Message(role="user", content="My name is Ada and I am allergic to peanuts.")
    fitted = fit_messages(messages, 1200, FitOptions(ContextMode.reservoir, summary_tokens=300))
    assert fitted is not None
    assert count_messages(fitted) <= 1200
    summary = fitted[1]
    assert summary.role == "system" and summary.text().startswith(HEADER)
    assert fitted[2].role == "user" and fitted[2] in messages  # then recent turns verbatim
    assert "- user: My name is Ada and I am allergic to peanuts." in summary.text()


def test_summary_respects_its_budget_and_original_order() -> None:
    messages = [
        Message(role="user", content=f"Sentence number {i} mentions {_word(i)} and {_word(i + 7)}.")
        for i in range(40)
    ]
    summary = summarise(messages, 120)
    assert summary is not None
    assert count_messages([summary]) - 3 <= 120
    numbers = [int(line.split()[4]) for line in summary.text().splitlines()[1:]]
    assert numbers == sorted(numbers) and len(numbers) >= 3


def _word(i: int) -> str:
    return "".join(chr(97 + (i // 26**k) % 26) for k in range(3)) * 2


def test_summary_of_nothing_useful_is_none() -> None:
    assert summarise([Message(role="user", content="ok")], 100) is None
    assert summarise(chat(2), 5) is None  # not even the header fits


def test_adaptive_keeps_code_verbatim_and_summarises_chat() -> None:
    code = [
        SYSTEM,
        *[
            Message(role=r, content=f"```python\ndef f{i}(x):\n    return x + {i}\n```\n{FILLER}")
            for i in range(15)
            for r in ("user", "assistant")
        ],
        Message(role="user", content="Now add type hints."),
    ]
    assert looks_like_code(code) and not looks_like_code(chat(3))
    fitted_code = fit_messages(code, 900, FitOptions(ContextMode.adaptive))
    fitted_chat = fit_messages(chat(20), 900, FitOptions(ContextMode.adaptive))
    assert fitted_code is not None and fitted_chat is not None
    assert not any(m.text().startswith(HEADER) for m in fitted_code)
    assert any(m.text().startswith(HEADER) for m in fitted_chat)


def test_tools_make_a_conversation_coding() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "ls", "arguments": "{}"}}
    messages = [
        Message(role="user", content="list files"),
        Message.model_validate({"role": "assistant", "tool_calls": [call]}),
        Message(role="tool", tool_call_id="c1", content="a.py b.py"),
    ]
    assert looks_like_code(messages)


def test_a_tool_result_never_loses_its_call() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "ls", "arguments": "{}"}}
    messages = [
        SYSTEM,
        *chat(10)[1:-1],
        Message(role="user", content="list files"),
        Message.model_validate({"role": "assistant", "tool_calls": [call]}),
        Message(role="tool", tool_call_id="c1", content="a.py b.py"),
    ]
    fitted = fit_messages(messages, 300, FitOptions(ContextMode.dynamic))
    assert fitted is not None
    assert fitted[-3:] == messages[-3:]  # the last user turn and everything after it


def test_off_refuses_instead_of_trimming() -> None:
    model = ModelConfig(id="tiny", context_window=1000)
    with pytest.raises(InvalidRequest) as info:
        fit_request(request(chat(10)), model, FitOptions(ContextMode.off))
    assert info.value.param == "messages"
    assert "context_mode='off'" in info.value.message
    assert not can_fit(request(chat(10)), model, FitOptions(ContextMode.off))


def test_a_pinned_part_too_long_for_the_model_is_a_clear_400() -> None:
    model = ModelConfig(id="tiny", context_window=600)
    long_question = [SYSTEM, Message(role="user", content=FILLER * 4)]
    options = FitOptions(ContextMode.dynamic)
    assert not can_fit(request(long_question), model, options)
    with pytest.raises(InvalidRequest) as info:
        fit_request(request(long_question), model, options)
    assert "tiny" in info.value.message and info.value.param == "messages"
    big = ModelConfig(id="big", context_window=8192)
    assert can_fit(request(long_question), big, options)
    assert fit_request(request(long_question), big, options).messages == long_question


def test_fit_request_trims_for_small_windows_only() -> None:
    req = request(chat(30), max_tokens=200)
    small = ModelConfig(id="small", context_window=2048)
    large = ModelConfig(id="large", context_window=131072)
    options = FitOptions(ContextMode.dynamic)
    assert fit_request(req, large, options) is req
    trimmed = fit_request(req, small, options)
    assert count_messages(trimmed.messages) <= prompt_budget(req, small)
    assert trimmed.max_tokens == 200 and trimmed.model == "m"


def test_output_reserve_uses_the_request_then_the_model() -> None:
    model = ModelConfig(id="m", context_window=8192, max_output_tokens=512)
    assert output_reserve(request(chat(0), max_tokens=100, n=2), model) == 200
    assert output_reserve(request(chat(0)), model) == 512
    assert output_reserve(request(chat(0)), ModelConfig(id="m", context_window=2000)) == 500
    huge = request(chat(0), max_completion_tokens=9000)
    assert prompt_budget(huge, model) < 0
    assert not can_fit(huge, model, FitOptions())


def test_options_come_from_settings_unless_the_request_overrides() -> None:
    settings = Settings(context_mode=ContextMode.static, context_static_messages=3)
    assert FitOptions.from_settings(settings).mode is ContextMode.static
    assert FitOptions.from_settings(settings, "reservoir").mode is ContextMode.reservoir
    assert FitOptions.from_settings(settings).static_messages == 3
