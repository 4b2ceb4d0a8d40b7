"""JSON answers: when the request asked for JSON, the JSON without the fence around it."""

from __future__ import annotations

import orjson

from relay_core.normalize.fences import fenced_blocks
from relay_core.schemas.chat import ChatCompletionRequest

JSON_FORMATS = frozenset({"json_object", "json_schema"})


def wants_json(request: ChatCompletionRequest) -> bool:
    fmt = request.response_format
    return fmt is not None and fmt.get("type") in JSON_FORMATS


def is_json(text: str) -> bool:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


def extract_json(text: str) -> str:
    """The JSON in ``text``: itself when it already is JSON, else the first fenced block that
    parses, else the outermost ``{...}``/``[...]`` that parses; otherwise ``text`` unchanged."""
    if is_json(text):
        return text
    for block in fenced_blocks(text):
        if is_json(block):
            return block.strip()
    for opener, closer in (("{", "}"), ("[", "]")):
        start, end = text.find(opener), text.rfind(closer)
        if 0 <= start < end and is_json(text[start : end + 1]):
            return text[start : end + 1]
    return text
