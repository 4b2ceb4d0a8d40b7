"""Is an answer what ``response_format`` asked for? One typed check, used by the repair loop
and by whoever else needs to know (outcome-learned ranking).

    validate(completion, response_format) -> ValidationResult

* no ``response_format``, or ``{"type": "text"}``: nothing to check (``checked`` is false);
* ``json_object``: every choice's content parses as a JSON object;
* ``json_schema``: every choice's content parses as JSON and is valid against
  ``json_schema.schema``, checked by the ``jsonschema`` library with the draft the schema
  names (2020-12 when it names none).

A choice that ends in tool calls is not checked (the model answered with a call, not text).
The error says which choice failed, where in the document, and why, in words the model can act
on when it is asked again.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from jsonschema import exceptions, validators
from jsonschema.protocols import Validator

from relay_core.schemas.chat import ChatCompletion

MAX_ERROR_CHARS = 400


@dataclass(frozen=True, slots=True)
class ValidationResult:
    checked: bool  # the request asked for JSON, so the answer was checked
    ok: bool
    error: str | None = None  # what the validator said, for the model and the audit
    choice: int | None = None  # the first choice that failed

    @property
    def failed(self) -> bool:
        return self.checked and not self.ok


UNCHECKED = ValidationResult(checked=False, ok=True)
VALID = ValidationResult(checked=True, ok=True)


def format_type(response_format: Mapping[str, Any] | None) -> str | None:
    """``json_object`` / ``json_schema`` when the request asks for JSON, else None."""
    if not response_format:
        return None
    kind = response_format.get("type")
    return kind if kind in ("json_object", "json_schema") else None


def schema_of(response_format: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The JSON Schema of a ``json_schema`` response format (None for any other)."""
    if format_type(response_format) != "json_schema" or response_format is None:
        return None
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    return schema if isinstance(schema, dict) else None


def schema_problem(response_format: Mapping[str, Any] | None) -> str | None:
    """Why a ``json_schema`` response format cannot be checked (no schema, or not a valid
    JSON Schema), else None: the API refuses such a request before sending it anywhere."""
    if format_type(response_format) != "json_schema":
        return None
    schema = schema_of(response_format)
    if schema is None:
        return "response_format.json_schema.schema must be a JSON Schema object"
    try:
        _validator(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS))
    except exceptions.SchemaError as exc:
        return f"response_format.json_schema.schema is not a valid JSON Schema: {exc.message}"
    return None


@functools.lru_cache(maxsize=256)
def _validator(schema_json: bytes) -> Validator:
    schema = orjson.loads(schema_json)
    cls = validators.validator_for(schema, default=validators.Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema)


def _where(error: exceptions.ValidationError) -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return f"${path}"


def _parsed(text: str | None, kind: str) -> tuple[Any, str | None]:
    """The JSON document in ``text``, or why there is none (of the kind asked for)."""
    if not text or not text.strip():
        return None, "the answer is empty; a JSON document was asked for"
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return None, f"the answer is not JSON ({exc}); answer with the JSON document only"
    if kind == "json_object" and not isinstance(document, dict):
        return None, "the answer is JSON but not an object; answer with one JSON object"
    return document, None


def check_text(text: str | None, kind: str, schema: dict[str, Any] | None) -> str | None:
    """Why ``text`` is not the JSON asked for, or None when it is."""
    document, problem = _parsed(text, kind)
    if problem is not None or schema is None:
        return problem
    try:
        validator = _validator(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS))
    except exceptions.SchemaError:
        return None  # refused at the API; a batch line's bad schema cannot be held against it
    error = exceptions.best_match(validator.iter_errors(document))
    if error is None:
        return None
    return f"the JSON does not match the schema at {_where(error)}: {error.message}"


def validate(
    completion: ChatCompletion, response_format: Mapping[str, Any] | None
) -> ValidationResult:
    """Whether every choice of ``completion`` is the JSON ``response_format`` asked for."""
    kind = format_type(response_format)
    if kind is None:
        return UNCHECKED
    schema = schema_of(response_format)
    for choice in completion.choices:
        if choice.finish_reason == "tool_calls" or choice.message.tool_calls:
            continue
        problem = check_text(choice.message.content, kind, schema)
        if problem is not None:
            short = problem if len(problem) <= MAX_ERROR_CHARS else problem[:MAX_ERROR_CHARS]
            return ValidationResult(checked=True, ok=False, error=short, choice=choice.index)
    return VALID
