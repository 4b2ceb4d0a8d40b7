"""OpenAI chat request → Gemini ``GenerateContentRequest``.

Tool parameter schemas and ``json_schema`` response formats are sent as
``parametersJsonSchema`` / ``responseJsonSchema``: those take the client's JSON Schema as is,
where ``parameters`` / ``responseSchema`` take an OpenAPI subset that refuses common keywords
(``additionalProperties``, ``$defs``) and so would need the schema rewritten.
"""

from __future__ import annotations

import json
from typing import Any

from relay_core.providers._messages import (
    content_parts,
    extra_int,
    image_url,
    parse_data_url,
    system_texts,
    tool_arguments,
    tool_choice,
    tool_name_for,
    tool_names,
    unsupported_part,
    unsupported_role,
)
from relay_core.providers._params import ParamPolicy, json_schema, response_format_type
from relay_core.schemas.chat import ChatCompletionRequest, Message, Tool

GEMINI_PARAMS = ParamPolicy(
    family="gemini",
    mapped=frozenset(
        {
            "temperature",
            "top_p",
            "top_k",
            "max_tokens",
            "max_completion_tokens",
            "stop",
            "n",
            "seed",
            "presence_penalty",
            "frequency_penalty",
            "response_format",
            "tools",
            "tool_choice",
        }
    ),
    dropped=frozenset({"user", "store", "metadata"}),
)

_CALLING_MODE = {"auto": "AUTO", "required": "ANY", "none": "NONE", "named": "ANY"}


def gemini_request(request: ChatCompletionRequest) -> dict[str, Any]:
    """The JSON body of ``generateContent`` / ``streamGenerateContent`` for ``request``."""
    GEMINI_PARAMS.check(request)
    body: dict[str, Any] = {"contents": _contents(request.messages)}
    system = system_texts(request.messages)
    if system:
        body["systemInstruction"] = {"parts": [{"text": text} for text in system]}
    config = _generation_config(request)
    if config:
        body["generationConfig"] = config
    if request.tools:
        body["tools"] = [{"functionDeclarations": [_declaration(t) for t in request.tools]}]
    if request.tool_choice is not None:
        mode, name = tool_choice(request.tool_choice)
        calling: dict[str, Any] = {"mode": _CALLING_MODE[mode]}
        if name is not None:
            calling["allowedFunctionNames"] = [name]
        body["toolConfig"] = {"functionCallingConfig": calling}
    return body


def _contents(messages: list[Message]) -> list[dict[str, Any]]:
    names = tool_names(messages)
    contents: list[dict[str, Any]] = []
    after_tool = False
    for index, message in enumerate(messages):
        if message.role in ("system", "developer"):
            continue
        if message.role == "tool":
            part = _function_response(message, tool_name_for(message, names, index))
            if after_tool:  # answers to one turn's calls go back together
                contents[-1]["parts"].append(part)
            else:
                contents.append({"role": "user", "parts": [part]})
            after_tool = True
            continue
        after_tool = False
        if message.role == "user":
            contents.append({"role": "user", "parts": _user_parts(message, index)})
        elif message.role == "assistant":
            contents.append({"role": "model", "parts": _model_parts(message, index)})
        else:
            raise unsupported_role("gemini", message.role, index)
    return contents


def _user_parts(message: Message, index: int) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content_parts(message)):
        kind = part.get("type")
        if kind == "text":
            parts.append({"text": str(part.get("text", ""))})
            continue
        data = parse_data_url(image_url(part)) if kind == "image_url" else None
        if data is None:
            what = "image URLs other than base64 data: URLs" if kind == "image_url" else kind
            raise unsupported_part("gemini", what, f"messages[{index}].content[{j}]")
        parts.append({"inlineData": {"mimeType": data.mime_type, "data": data.data}})
    return parts


def _model_parts(message: Message, index: int) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    text = message.text()
    if text:
        parts.append({"text": text})
    for j, call in enumerate(message.tool_calls or []):
        param = f"messages[{index}].tool_calls[{j}].function.arguments"
        args = tool_arguments(call, param)
        parts.append({"functionCall": {"name": call.function.name, "args": args}})
    return parts or [{"text": ""}]


def _function_response(message: Message, name: str) -> dict[str, Any]:
    """A tool result; a JSON object is the response, anything else is ``{"output": text}``."""
    text = message.text()
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    response = value if isinstance(value, dict) else {"output": text}
    return {"functionResponse": {"name": name, "response": response}}


def _generation_config(request: ChatCompletionRequest) -> dict[str, Any]:
    extras = request.extras()
    config: dict[str, Any] = {
        "temperature": request.temperature,
        "topP": request.top_p,
        "topK": extra_int(extras, "top_k"),
        "maxOutputTokens": request.output_limit(),
        "stopSequences": request.stop_list() or None,
        "candidateCount": request.n,
        "seed": request.seed,
        "presencePenalty": request.presence_penalty,
        "frequencyPenalty": request.frequency_penalty,
    }
    kind = response_format_type(request)
    if kind in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
    if kind == "json_schema":
        config["responseJsonSchema"] = json_schema(request)
    return {key: value for key, value in config.items() if value is not None}


def _declaration(tool: Tool) -> dict[str, Any]:
    function = tool.function
    declaration: dict[str, Any] = {"name": function.name}
    if function.description is not None:
        declaration["description"] = function.description
    if function.parameters is not None:
        declaration["parametersJsonSchema"] = function.parameters
    return declaration
