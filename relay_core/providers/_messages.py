"""Helpers for mapping OpenAI messages to another family's wire format."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from relay_core.errors import InvalidRequest
from relay_core.schemas.chat import Message, ToolCall


def tool_arguments(call: ToolCall, param: str) -> dict[str, Any]:
    """A tool call's JSON ``arguments`` string as an object (``""`` counts as ``{}``)."""
    if not call.function.arguments.strip():
        return {}
    try:
        value = json.loads(call.function.arguments)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise InvalidRequest("tool call arguments must be a JSON object", param=param)
    return value


def tool_names(messages: list[Message]) -> dict[str, str]:
    """Tool call id → function name, from every assistant message's ``tool_calls``."""
    return {
        call.id: call.function.name for message in messages for call in message.tool_calls or []
    }


def tool_name_for(message: Message, names: Mapping[str, str], index: int) -> str:
    name = names.get(message.tool_call_id or "")
    if name is None:
        raise InvalidRequest(
            "a tool message must answer a tool call made by an earlier assistant message",
            param=f"messages[{index}].tool_call_id",
        )
    return name


def system_texts(messages: list[Message]) -> list[str]:
    """The text of every system and developer message, in order."""
    return [m.text() for m in messages if m.role in ("system", "developer")]


@dataclass(frozen=True)
class DataURL:
    mime_type: str
    data: str  # base64


def parse_data_url(url: str) -> DataURL | None:
    """``data:image/png;base64,AAAA`` → DataURL; None for anything that is not base64 data."""
    if not url.startswith("data:"):
        return None
    header, sep, data = url[len("data:") :].partition(",")
    mime_type, _, encoding = header.partition(";")
    if not sep or encoding != "base64" or not mime_type:
        return None
    return DataURL(mime_type, data)


def content_parts(message: Message) -> list[dict[str, Any]]:
    """A message's content as parts (a string becomes one text part)."""
    if message.content is None:
        return []
    if isinstance(message.content, str):
        return [{"type": "text", "text": message.content}]
    return message.content


def image_url(part: dict[str, Any]) -> str:
    value = part.get("image_url")
    url = value.get("url") if isinstance(value, dict) else value
    return url if isinstance(url, str) else ""


def unsupported_part(family: str, kind: object, param: str) -> InvalidRequest:
    return InvalidRequest(f"{family} providers cannot take {kind!r} content", param=param)


def unsupported_role(family: str, role: str, index: int) -> InvalidRequest:
    return InvalidRequest(
        f"{family} providers cannot take {role!r} messages", param=f"messages[{index}].role"
    )


def tool_choice(choice: str | dict[str, Any]) -> tuple[str, str | None]:
    """OpenAI ``tool_choice`` as ``(mode, function name)``; mode is auto/required/none/named."""
    if isinstance(choice, str):
        if choice in ("auto", "required", "none"):
            return choice, None
    elif choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if isinstance(name, str) and name:
            return "named", name
    raise InvalidRequest(f"tool_choice {choice!r} is not understood", param="tool_choice")


def extra_int(request_extras: Mapping[str, Any], name: str) -> int | None:
    """An integer extra such as ``top_k``; any other type is refused."""
    value = request_extras.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{name!r} must be an integer", param=name)
    return value
