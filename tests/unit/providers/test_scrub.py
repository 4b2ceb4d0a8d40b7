"""Scrubbing a provider's key from what it says: decoded JSON, bodies, split stream text."""

from __future__ import annotations

import orjson

from relay_core.providers._scrub import (
    REDACTED,
    HeldText,
    answer_secret,
    scrub_body,
    scrub_paths,
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


def test_file_paths_are_scrubbed_api_paths_and_urls_are_kept() -> None:
    cases = {
        'File "/usr/lib/python3/site-packages/llama_cpp/server/app.py", line 312': (
            'File "[path]", line 312'
        ),
        'File "C:\\Program Files\\Python311\\Lib\\llama.py", line 3': 'File "[path]", line 3',
        "error at C:\\Users\\bob\\server.py boom": "error at [path] boom",
        "at D:/work/llama/run.py": "at [path]",
        "share \\\\fileserver\\models\\smol.gguf": "share [path]",
        "model /models/smollm2-135m.gguf not found; see /opt/llama": (
            "model [path] not found; see [path]"
        ),
        "open /tmp/x: no such file": "open [path]: no such file",
    }
    for text, scrubbed in cases.items():
        assert scrub_paths(text) == scrubbed, text
    for kept in (
        "Invalid URL (POST /v1/chat/completions)",
        "see https://api.groq.com/openai/v1/models.json or /v1/models",
        "1/2.5 of the budget, and/or later; ratio 3/4",
        "plain text",
    ):
        assert scrub_paths(kept) == kept


def test_a_body_without_paths_or_key_is_returned_as_it_came() -> None:
    body = '{"error":  {"message": "busy", "path": "/v1/chat/completions"}}'
    assert scrub_body(body, None) is body
    scrubbed = orjson.loads(scrub_body('{"e": ["/usr/lib/x.py", {"f": "/home/a/b"}]}', None))
    assert scrubbed == {"e": ["[path]", {"f": "[path]"}]}
