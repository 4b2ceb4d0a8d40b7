"""The token estimate: close to BPE tokenizers on typical text, never zero for content."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay_core.context.count import count_message, count_messages, count_text, lower_bound
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


LABELLED = Path(__file__).parents[2] / "fixtures" / "tokens" / "labelled.jsonl"


def _labelled() -> list[tuple[str, int]]:
    rows = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines()]
    return [(row["text"], row["smollm2"]) for row in rows]


def _dense(text: str) -> bool:
    """Mostly digits or Chinese/Japanese/Korean characters."""
    dense = sum(1 for ch in text if ch.isdigit() or ord(ch) >= 0x3000)
    return dense * 2 >= len(text)


def test_dense_text_is_not_undercounted_against_a_real_tokenizer() -> None:
    # SmolLM2's tokenizer (the real upstream of issue 14) splits numbers digit by digit and
    # CJK text into bytes: the old estimate counted "1234567890" as 4 tokens (10 real) and
    # a 13-character Chinese sentence as 13 (26 real).
    dense = [(text, real) for text, real in _labelled() if _dense(text)]
    assert len(dense) >= 10
    for text, real in dense:
        assert count_text(text) >= 0.85 * real, text


def test_every_labelled_text_is_counted_within_reason() -> None:
    rows = _labelled()
    for text, real in rows:
        assert 0.6 * real <= count_text(text) <= 1.6 * real, text
    estimated = sum(count_text(text) for text, _ in rows)
    real_total = sum(real for _, real in rows)
    assert real_total <= estimated <= 1.2 * real_total


def test_digits_and_cjk_cost_per_character() -> None:
    assert count_text("1234567") == 7
    assert count_text("東京都") == 6
    assert count_text("안녕") == 6


def test_underscores_count_as_the_punctuation_they_are() -> None:
    # Found by the property below: "_" matched no piece of the pre-tokenizer and cost nothing.
    assert count_text("_") == 1
    assert count_text("snake_case_name") >= 3
    assert count_text("__init__") >= 3


@given(st.text(max_size=300))
def test_the_lower_bound_holds_without_reading_the_text(text: str) -> None:
    message = Message(role="user", content=text)
    assert lower_bound([message]) <= count_messages([message])
    assert count_text(text) >= len(text) / 8
    assert count_text(text) <= max(1, len(text.encode("utf-8", "surrogatepass")))


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
