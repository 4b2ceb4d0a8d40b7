"""JSON answers, for a request that asked for JSON (``response_format`` json_object /
json_schema, Gemini's ``responseMimeType``, Ollama's ``format``, or an Anthropic system prompt
that asks for JSON): the answer's text in a document the schema accepts.

Without a schema the document is ``{"answer": <text>}``. With one, each ``required`` property
(and ``answer``, when the schema has it) gets a value of its type: strings the text, numbers
and integers the text's length, booleans true, arrays empty (or ``minItems`` values), objects
filled the same way; ``enum`` and ``const`` take their first value. Enough for tests and demos,
not a general instance generator.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

MAX_DEPTH = 8


def _fixed(schema: dict[str, Any], text: str) -> tuple[bool, Any]:
    """(True, the value) when ``schema`` fixes one without looking inside it."""
    if "const" in schema:
        return True, schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return True, enum[0]
    kind = _kind(schema)
    scalars: dict[str, Any] = {
        "integer": len(text),
        "number": float(len(text)),
        "boolean": True,
        "null": None,
        "string": text,
    }
    return (True, scalars[kind]) if kind in scalars else (False, None)


def _kind(schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    return kind if isinstance(kind, str) else None


def _value(schema: Any, text: str, depth: int) -> Any:
    if not isinstance(schema, dict) or depth > MAX_DEPTH:
        return text
    fixed, value = _fixed(schema, text)
    if fixed:
        return value
    kind = _kind(schema)
    if kind == "array":
        count = schema.get("minItems", 0) if isinstance(schema.get("minItems"), int) else 0
        return [_value(schema.get("items"), text, depth + 1) for _ in range(count)]
    if kind == "object" or "properties" in schema:
        return _object(schema, text, depth)
    return text


def _object(schema: dict[str, Any], text: str, depth: int) -> dict[str, Any]:
    raw_props, raw_required = schema.get("properties"), schema.get("required")
    props: dict[str, Any] = raw_props if isinstance(raw_props, dict) else {}
    required: list[Any] = raw_required if isinstance(raw_required, list) else []
    names = [n for n in required if isinstance(n, str)]
    if "answer" in props and "answer" not in names:
        names.append("answer")
    if not props and not names:
        return {"answer": text}
    return {name: _value(props.get(name), text, depth + 1) for name in names}


def json_text(schema: dict[str, Any] | None, text: str) -> str:
    """``text`` as the JSON document ``schema`` (None: any object) accepts."""
    document = {"answer": text} if schema is None else _value(schema, text, 0)
    return orjson.dumps(document).decode()


def schema_in_text(text: str) -> dict[str, Any] | None:
    """The JSON Schema a prompt quotes after the words "JSON Schema" (how a model without a
    JSON mode is told the shape: Relay's Anthropic instruction), else None."""
    at = text.find("JSON Schema")
    start = text.find("{", at) if at >= 0 else -1
    if start < 0:
        return None
    try:
        schema, _ = json.JSONDecoder().raw_decode(text, start)
    except ValueError:
        return None
    return schema if isinstance(schema, dict) else None
