"""The normalizer on whole answers: tricky inputs it must get right."""

from __future__ import annotations

import orjson
import pytest

from relay_core.normalize import Normalize, normalize_completion, normalize_text
from relay_core.normalize.fences import balance_fences
from relay_core.normalize.preamble import strip_preamble
from relay_core.schemas.chat import ChatCompletion, ChatCompletionRequest

PROSE = Normalize(preambles=True)
JSON = Normalize(json=True)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Sure thing! Paris is the capital.", "Paris is the capital."),
        ("Certainly! Here is the list:\n- a", "Here is the list:\n- a"),
        ("Sure, here's how: run it.", "Here's how: run it."),
        ("Of course! Certainly, the answer is 4.", "The answer is 4."),
        ("As an AI language model, I cannot browse.", "I cannot browse."),
        ("As an AI developed by Acme, I think so.", "I think so."),
        ("  Absolutely!\n\nYes.", "Yes."),
    ],
)
def test_preambles_at_the_start_are_stripped(raw: str, clean: str) -> None:
    assert strip_preamble(raw) == clean


@pytest.mark.parametrize(
    "text",
    [
        "Certainly not: that would lose data.",  # no punctuation right after the interjection
        "Surely you know this.",
        "Sure!",  # nothing but a preamble: left alone
        "The answer: Sure! That works.",  # not at the very start
        "```text\nSure! inside code\n```",  # an answer that opens with code
        "    Sure! indented code block",
        "Sure.js is a library.",
    ],
)
def test_text_that_only_looks_like_a_preamble_is_kept(text: str) -> None:
    assert normalize_text(text, PROSE) == text


def test_a_line_starting_sure_inside_code_is_untouched() -> None:
    text = "Here is the script:\n\n```bash\nSure! echo hi\n\n\nCertainly, done\n```\n"
    assert normalize_text(text, PROSE) == text


def test_blank_lines_in_code_survive_a_stripped_preamble() -> None:
    raw = "Sure!\n\n```py\ndef f():\n\n\n    return 1\n```"
    assert normalize_text(raw, PROSE) == "```py\ndef f():\n\n\n    return 1\n```"


@pytest.mark.parametrize(
    ("raw", "balanced"),
    [
        ("```py\nprint(1)", "```py\nprint(1)\n```"),
        ("```py\nprint(1)\n", "```py\nprint(1)\n```"),
        ("text\n```\nok\n```\n", "text\n```\nok\n```\n"),
        # Nested: a four-backtick block holding a three-backtick one is closed by four.
        ("````md\n```py\nx\n```\n", "````md\n```py\nx\n```\n````"),
        ("````md\n```py\nx\n```\n````", "````md\n```py\nx\n```\n````"),
        ("~~~\n```\n", "~~~\n```\n~~~"),
        ("inline ```code``` only", "inline ```code``` only"),
    ],
)
def test_fences_are_balanced(raw: str, balanced: str) -> None:
    assert balance_fences(raw) == balanced


@pytest.mark.parametrize(
    ("raw", "payload"),
    [
        ('{"a": 1}', '{"a": 1}'),
        ('```json\n{"a": 1}\n```', '{"a": 1}'),
        ('Here you go:\n```json\n{"a": [1, 2]}\n```\nHope it helps!', '{"a": [1, 2]}'),
        ("```\n[1, 2, 3]\n```", "[1, 2, 3]"),
        ('Sure! The result is {"ok": true} as asked.', '{"ok": true}'),
        # A nested fence inside the JSON string does not end the block early.
        ('````json\n{"md": "```x```"}\n````', '{"md": "```x```"}'),
        ("no json here at all", "no json here at all"),
    ],
)
def test_json_is_taken_out_of_fences_when_json_was_asked(raw: str, payload: str) -> None:
    assert normalize_text(raw, JSON) == payload


def test_what_applies_depends_on_the_request_and_the_setting() -> None:
    plain = ChatCompletionRequest(model="m", messages=[{"role": "user", "content": "x"}])
    json_req = plain.model_copy(update={"response_format": {"type": "json_object"}})
    assert not Normalize.for_request(plain, enabled=False).active
    assert Normalize.for_request(plain, enabled=True) == PROSE
    assert Normalize.for_request(json_req, enabled=False) == JSON
    assert Normalize.for_request(json_req, enabled=True) == JSON


def test_a_completion_is_normalized_choice_by_choice() -> None:
    body = ChatCompletion.model_validate(
        {
            "model": "m",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "Sure! Yes."}},
                {"index": 1, "message": {"role": "assistant", "content": None}},
            ],
        }
    )
    out = normalize_completion(body, PROSE)
    assert out.choices[0].message.content == "Yes."
    assert out.choices[1].message.content is None
    assert body.choices[0].message.content == "Sure! Yes."  # the original is not mutated
    assert normalize_completion(body, Normalize()) is body


def test_extracted_json_parses() -> None:
    raw = 'Here:\n```json\n{"items": [{"id": 1}, {"id": 2}]}\n```'
    assert orjson.loads(normalize_text(raw, JSON)) == {"items": [{"id": 1}, {"id": 2}]}
