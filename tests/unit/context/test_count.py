"""The token estimate: close to BPE tokenizers on typical text, never zero for content."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay_core.context.count import count_message, count_messages, count_text
from relay_core.schemas.chat import Message


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        # cl100k_base gives 10, 2 and 9 tokens for these.
        ("The quick brown fox jumps over the lazy dog.", 9, 12),
        ("hello world", 2, 3),
        ("for i in range(10):\n    print(i)", 8, 14),
        ("", 0, 0),
    ],
)
def test_common_text_is_counted_about_right(text: str, low: int, high: int) -> None:
    assert low <= count_text(text) <= high


def test_numbers_split_in_groups_of_three_and_cjk_per_character() -> None:
    assert count_text("1234567") == 3
    assert count_text("東京都") == 3


def test_underscores_count_as_the_punctuation_they_are() -> None:
    # Found by the property below: "_" matched no piece of the pre-tokenizer and cost nothing.
    assert count_text("_") == 1
    assert count_text("snake_case_name") == 3
    assert count_text("__init__") == 3


@given(st.text(max_size=200), st.text(max_size=200))
def test_counting_is_roughly_additive_and_positive(a: str, b: str) -> None:
    assert count_text(a + b) <= count_text(a) + count_text(b) + 2
    if a.strip():
        assert count_text(a) >= 1


def test_messages_add_template_overhead_images_and_tool_calls() -> None:
    plain = Message(role="user", content="hi")
    image = Message(
        role="user",
        content=[{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "x"}}],
    )
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    tool = Message.model_validate({"role": "assistant", "tool_calls": [call]})
    assert count_message(image) > count_message(plain) + 200
    assert count_message(tool) > count_message(Message(role="assistant"))
    assert count_messages([plain, plain]) == 3 + 2 * count_message(plain)
