"""Scrubbing a provider's key from what it says: decoded JSON, bodies, split stream text."""

from __future__ import annotations

import orjson

from relay_core.providers._scrub import (
    REDACTED,
    HeldText,
    answer_secret,
    scrub_body,
    scrub_value,
)

KEY = "sk-test_key/0123456789"


def test_decoded_values_are_scrubbed_at_any_depth_keys_included() -> None:
    deep: object = KEY
    for _ in range(2000):  # deeper than Python's recursion limit
        deep = [deep]
    value = {"a": [KEY, {"b": f"x{KEY}y"}], KEY: 1, "deep": deep}
    scrub_value(value, KEY)
    for _ in range(2000):
        deep = deep[0]  # type: ignore[index]
    assert deep == REDACTED
    value["deep"] = None
    text = orjson.dumps(value).decode()
    assert KEY not in text and text.count(REDACTED) == 3


def test_an_escaped_key_in_a_json_body_is_found_once_decoded() -> None:
    body = '{"error": {"message": "bad key sk-t\\u0065st_key\\/0123456789"}}'
    assert KEY in orjson.loads(body)["error"]["message"]
    scrubbed = scrub_body(body, KEY)
    assert KEY not in orjson.loads(scrubbed)["error"]["message"]
    assert scrub_body(f"<html>{KEY}</html>", KEY) == f"<html>{REDACTED}</html>"


def test_held_text_scrubs_a_key_split_anywhere_and_holds_no_more_than_it_must() -> None:
    text = f"before {KEY} after {KEY[:5]}"
    for cut in range(len(text) + 1):
        for second in range(cut, len(text) + 1):
            held = HeldText(KEY)
            pieces = [held.feed(text[:cut]), held.feed(text[cut:second])]
            pieces += [held.feed(text[second:]), held.flush()]
            assert "".join(pieces) == f"before {REDACTED} after {KEY[:5]}"
            assert all(KEY not in p for p in pieces)
    held = HeldText(KEY)
    assert held.feed("no key here") == "no key here"  # nothing held back without a start
    assert held.feed("ends with s") == "ends with " and held.flush() == "s"


def test_short_keys_are_not_scrubbed_from_answers() -> None:
    assert answer_secret("ollama") is None and answer_secret(None) is None
    assert answer_secret(KEY) == KEY
