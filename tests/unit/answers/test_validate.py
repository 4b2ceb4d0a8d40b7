"""validate(completion, response_format): what the repair loop and ranking rely on."""

from __future__ import annotations

from typing import Any

import pytest

from relay_core.answers.validate import schema_problem, validate
from relay_core.schemas.chat import ChatCompletion

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
SCHEMA_FORMAT = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON}}


def completion(*contents: str | None, finish: str = "stop", **message: Any) -> ChatCompletion:
    return ChatCompletion.model_validate(
        {
            "model": "m",
            "choices": [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": c, **message},
                    "finish_reason": finish,
                }
                for i, c in enumerate(contents)
            ],
        }
    )


@pytest.mark.parametrize("fmt", [None, {"type": "text"}])
def test_nothing_is_checked_without_a_json_format(fmt: dict[str, Any] | None) -> None:
    result = validate(completion("plain prose"), fmt)
    assert (result.checked, result.ok, result.failed) == (False, True, False)


def test_json_object_wants_one_object() -> None:
    fmt = {"type": "json_object"}
    assert validate(completion('{"a": 1}'), fmt).ok
    prose = validate(completion("Sure! here it is"), fmt)
    assert prose.failed and "not JSON" in (prose.error or "")
    array = validate(completion("[1, 2]"), fmt)
    assert array.failed and "not an object" in (array.error or "")
    empty = validate(completion(""), fmt)
    assert empty.failed and "empty" in (empty.error or "")


def test_a_schema_is_checked_with_its_path_in_the_error() -> None:
    assert validate(completion('{"name": "Ada", "age": 36}'), SCHEMA_FORMAT).ok
    wrong = validate(completion('{"name": "Ada", "age": -1}'), SCHEMA_FORMAT)
    assert wrong.failed and wrong.choice == 0
    assert "$.age" in (wrong.error or "") and "minimum" in (wrong.error or "")
    missing = validate(completion('{"name": "Ada"}'), SCHEMA_FORMAT)
    assert missing.failed and "'age' is a required property" in (missing.error or "")
    extra = validate(completion('{"name": "Ada", "age": 3, "x": 1}'), SCHEMA_FORMAT)
    assert extra.failed and "Additional properties" in (extra.error or "")


def test_every_choice_is_checked_and_the_first_bad_one_named() -> None:
    result = validate(completion('{"name": "A", "age": 1}', "nope"), SCHEMA_FORMAT)
    assert result.failed and result.choice == 1


def test_a_tool_call_answer_is_not_held_to_the_format() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    answer = completion(None, finish="tool_calls", tool_calls=[call])
    assert validate(answer, SCHEMA_FORMAT).ok


def test_unusable_schemas_are_named() -> None:
    assert schema_problem(SCHEMA_FORMAT) is None
    assert schema_problem({"type": "json_object"}) is None
    assert schema_problem({"type": "json_schema", "json_schema": {"name": "x"}}) is not None
    bad = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 12}}}
    assert "not a valid JSON Schema" in (schema_problem(bad) or "")
