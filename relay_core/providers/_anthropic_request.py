"""OpenAI chat request → Anthropic Messages API request (``POST /v1/messages``)."""

from __future__ import annotations

from typing import Any

import orjson

from relay_core.errors import InvalidRequest
from relay_core.providers._messages import (
    content_parts,
    extra_int,
    image_url,
    parse_data_url,
    system_texts,
    tool_arguments,
    tool_choice,
    unsupported_part,
    unsupported_role,
)
from relay_core.providers._params import ParamPolicy, json_schema, response_format_type
from relay_core.schemas.chat import ChatCompletionRequest, Message, Tool

ANTHROPIC_PARAMS = ParamPolicy(
    family="anthropic",
    mapped=frozenset(
        {
            "temperature",
            "top_p",
            "top_k",
            "max_tokens",
            "max_completion_tokens",
            "stop",
            "tools",
            "tool_choice",
            "parallel_tool_calls",
            "user",
            "response_format",  # JSON modes: an instruction in the system prompt (below)
        }
    ),
    dropped=frozenset({"presence_penalty", "frequency_penalty", "seed", "store", "metadata"}),
)

DEFAULT_MAX_TOKENS = 4096
"""``max_tokens`` when neither the request nor the model's catalogue entry sets one."""
MAX_TEMPERATURE = 1.0

_TOOL_CHOICE = {"auto": "auto", "required": "any", "none": "none", "named": "tool"}
_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


def anthropic_request(
    request: ChatCompletionRequest, model: str, default_max_tokens: int
) -> dict[str, Any]:
    """The JSON body of ``/v1/messages`` for ``request``, sent to ``model``."""
    ANTHROPIC_PARAMS.check(request)
    _check_values(request)
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": request.output_limit() or default_max_tokens,
        "messages": _messages(request.messages),
    }
    system = system_texts(request.messages)
    instruction = json_instruction(request)
    if instruction is not None:
        system = [*system, instruction]
    if len(system) == 1:
        body["system"] = system[0]
    elif system:
        body["system"] = [{"type": "text", "text": text} for text in system]
    options = {
        "temperature": request.temperature,
        "top_p": request.top_p,
        "top_k": extra_int(request.extras(), "top_k"),
        "stop_sequences": request.stop_list() or None,
        "metadata": {"user_id": request.user} if request.user else None,
        "tools": [_tool(t) for t in request.tools] if request.tools else None,
        "tool_choice": _tool_choice(request),
    }
    body.update({key: value for key, value in options.items() if value is not None})
    return body


def _check_values(request: ChatCompletionRequest) -> None:
    if request.temperature is not None and request.temperature > MAX_TEMPERATURE:
        raise InvalidRequest(
            "anthropic providers take a temperature between 0 and 1", param="temperature"
        )
    if not isinstance(request.extras().get("parallel_tool_calls", True), bool):
        raise InvalidRequest("parallel_tool_calls must be a boolean", param="parallel_tool_calls")


def json_instruction(request: ChatCompletionRequest) -> str | None:
    """Anthropic has no JSON mode: a JSON ``response_format`` becomes this paragraph at the
    end of the system prompt, and Relay checks (and repairs) the answer (docs/answers.md)."""
    kind = response_format_type(request)
    if kind == "json_object":
        return "Answer with one JSON object only: no prose before or after it, no code fence."
    if kind == "json_schema":
        schema = orjson.dumps(json_schema(request)).decode()
        return (
            "Answer with one JSON document only, valid against this JSON Schema: "
            f"{schema}\nNo prose before or after it, no code fence."
        )
    return None


def _messages(messages: list[Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after_tool = False
    for index, message in enumerate(messages):
        if message.role in ("system", "developer"):
            continue
        if message.role == "tool":
            block = _tool_result(message, index)
            if after_tool:  # consecutive results answer one turn: one user message
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
            after_tool = True
            continue
        after_tool = False
        if message.role == "user":
            out.append({"role": "user", "content": _user_content(message, index)})
        elif message.role == "assistant":
            out.append({"role": "assistant", "content": _assistant_content(message, index)})
        else:
            raise unsupported_role("anthropic", message.role, index)
    return out


def _tool_result(message: Message, index: int) -> dict[str, Any]:
    if not message.tool_call_id:
        raise InvalidRequest(
            "a tool message needs the tool_call_id it answers",
            param=f"messages[{index}].tool_call_id",
        )
    return {"type": "tool_result", "tool_use_id": message.tool_call_id, "content": message.text()}


def _user_content(message: Message, index: int) -> str | list[dict[str, Any]]:
    if isinstance(message.content, str):
        return message.content
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(content_parts(message)):
        kind = part.get("type")
        if kind == "text":
            blocks.append({"type": "text", "text": str(part.get("text", ""))})
        elif kind == "image_url":
            blocks.append({"type": "image", "source": _image_source(image_url(part))})
        else:
            raise unsupported_part("anthropic", kind, f"messages[{index}].content[{j}]")
    return blocks


def _image_source(url: str) -> dict[str, str]:
    data = parse_data_url(url)
    if data is not None:
        return {"type": "base64", "media_type": data.mime_type, "data": data.data}
    return {"type": "url", "url": url}


def _assistant_content(message: Message, index: int) -> str | list[dict[str, Any]]:
    text = message.text()
    if not message.tool_calls:
        return text
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    for j, call in enumerate(message.tool_calls):
        param = f"messages[{index}].tool_calls[{j}].function.arguments"
        blocks.append(
            {
                "type": "tool_use",
                "id": call.id,
                "name": call.function.name,
                "input": tool_arguments(call, param),
            }
        )
    return blocks


def _tool(tool: Tool) -> dict[str, Any]:
    function = tool.function
    spec: dict[str, Any] = {"name": function.name}
    if function.description is not None:
        spec["description"] = function.description
    spec["input_schema"] = function.parameters if function.parameters is not None else _EMPTY_SCHEMA
    return spec


def _tool_choice(request: ChatCompletionRequest) -> dict[str, Any] | None:
    serial = request.extras().get("parallel_tool_calls") is False
    if request.tool_choice is None and not serial:
        return None
    mode, name = tool_choice(request.tool_choice or "auto")
    choice: dict[str, Any] = {"type": _TOOL_CHOICE[mode]}
    if name is not None:
        choice["name"] = name
    if serial and mode != "none":
        choice["disable_parallel_tool_use"] = True
    return choice
