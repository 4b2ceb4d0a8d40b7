"""OpenAI chat request ↔ Ollama's native ``/api/chat``."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from relay_core.errors import InvalidRequest
from relay_core.providers._http import CallContext
from relay_core.providers._messages import (
    content_parts,
    extra_int,
    image_url,
    parse_data_url,
    tool_arguments,
    tool_choice,
    tool_names,
    unsupported_part,
    unsupported_role,
)
from relay_core.providers._params import ParamPolicy, json_schema, response_format_type
from relay_core.schemas.chat import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    Delta,
    FinishReason,
    FunctionCall,
    Message,
    ToolCall,
    ToolCallDelta,
    Usage,
    new_completion_id,
)

OLLAMA_PARAMS = ParamPolicy(
    family="ollama",
    mapped=frozenset(
        {
            "temperature",
            "top_p",
            "top_k",
            "max_tokens",
            "max_completion_tokens",
            "stop",
            "seed",
            "presence_penalty",
            "frequency_penalty",
            "response_format",
            "tools",
            "tool_choice",  # auto and none only
        }
    ),
    dropped=frozenset({"user", "store", "metadata"}),
)

DONE_REASONS: Mapping[str, FinishReason] = MappingProxyType(
    {"stop": "stop", "length": "length", "load": "stop", "unload": "stop"}
)
"""Ollama ``done_reason`` → OpenAI ``finish_reason`` (anything else is ``stop``)."""


def ollama_request(request: ChatCompletionRequest, model: str, *, stream: bool) -> dict[str, Any]:
    OLLAMA_PARAMS.check(request)
    body: dict[str, Any] = {"model": model, "messages": _messages(request.messages)}
    body["stream"] = stream
    options = {
        "temperature": request.temperature,
        "top_p": request.top_p,
        "top_k": extra_int(request.extras(), "top_k"),
        "num_predict": request.output_limit(),
        "stop": request.stop_list() or None,
        "seed": request.seed,
        "presence_penalty": request.presence_penalty,
        "frequency_penalty": request.frequency_penalty,
    }
    options = {key: value for key, value in options.items() if value is not None}
    if options:
        body["options"] = options
    kind = response_format_type(request)
    if kind == "json_object":
        body["format"] = "json"
    elif kind == "json_schema":
        body["format"] = json_schema(request)
    if request.tools and _tools_allowed(request):
        body["tools"] = [t.model_dump(mode="json", exclude_none=True) for t in request.tools]
    return body


def _tools_allowed(request: ChatCompletionRequest) -> bool:
    """Ollama has no tool_choice: ``auto`` is its only behaviour, ``none`` means send no tools."""
    if request.tool_choice is None:
        return True
    mode, _ = tool_choice(request.tool_choice)
    if mode not in ("auto", "none"):
        raise InvalidRequest("ollama providers cannot force a tool call", param="tool_choice")
    return mode == "auto"


def _messages(messages: list[Message]) -> list[dict[str, Any]]:
    names = tool_names(messages)
    out: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        if message.role in ("system", "developer"):
            out.append({"role": "system", "content": message.text()})
        elif message.role == "user":
            out.append(_user(message, index))
        elif message.role == "assistant":
            out.append(_assistant(message, index))
        elif message.role == "tool":
            item = {"role": "tool", "content": message.text()}
            name = names.get(message.tool_call_id or "")
            if name is not None:
                item["tool_name"] = name
            out.append(item)
        else:
            raise unsupported_role("ollama", message.role, index)
    return out


def _user(message: Message, index: int) -> dict[str, Any]:
    item: dict[str, Any] = {"role": "user", "content": message.text()}
    images: list[str] = []
    for j, part in enumerate(content_parts(message)):
        kind = part.get("type")
        if kind == "text":
            continue
        data = parse_data_url(image_url(part)) if kind == "image_url" else None
        if data is None:
            what = "image URLs other than base64 data: URLs" if kind == "image_url" else kind
            raise unsupported_part("ollama", what, f"messages[{index}].content[{j}]")
        images.append(data.data)
    if images:
        item["images"] = images
    return item


def _assistant(message: Message, index: int) -> dict[str, Any]:
    item: dict[str, Any] = {"role": "assistant", "content": message.text()}
    if message.tool_calls:
        item["tool_calls"] = [
            {
                "function": {
                    "name": call.function.name,
                    "arguments": tool_arguments(
                        call, f"messages[{index}].tool_calls[{j}].function.arguments"
                    ),
                }
            }
            for j, call in enumerate(message.tool_calls)
        ]
    return item


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class OllamaFunction(_Wire):
    name: str
    arguments: dict[str, Any] = {}


class OllamaToolCall(_Wire):
    function: OllamaFunction


class OllamaMessage(_Wire):
    role: str = "assistant"
    content: str = ""
    tool_calls: list[OllamaToolCall] | None = None


class OllamaChat(_Wire):
    """One ``/api/chat`` answer, or one line of a streamed one."""

    model: str | None = None
    message: OllamaMessage
    done: bool
    done_reason: str | None = None
    prompt_eval_count: int | None = None
    eval_count: int | None = None

    def usage(self) -> Usage | None:
        if self.prompt_eval_count is None and self.eval_count is None:
            return None
        prompt, completion = self.prompt_eval_count or 0, self.eval_count or 0
        return Usage(
            prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
        )


def parse_chat(data: Any, ctx: CallContext, text: str) -> OllamaChat:
    try:
        return OllamaChat.model_validate(data)
    except ValidationError:
        raise ctx.malformed("the answer is not an Ollama chat response", text) from None


def _finish(reason: str | None, has_calls: bool) -> FinishReason:
    if has_calls:
        return "tool_calls"
    return DONE_REASONS.get(reason or "stop", "stop")


def _call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def to_completion(chat: OllamaChat, model: str) -> ChatCompletion:
    calls = [
        ToolCall(
            id=_call_id(),
            function=FunctionCall(name=c.function.name, arguments=json.dumps(c.function.arguments)),
        )
        for c in chat.message.tool_calls or []
    ]
    message = AssistantMessage(
        content=chat.message.content if chat.message.content or not calls else None,
        tool_calls=calls or None,
    )
    choice = Choice(message=message, finish_reason=_finish(chat.done_reason, bool(calls)))
    return ChatCompletion(
        id=new_completion_id(), model=chat.model or model, choices=[choice], usage=chat.usage()
    )


@dataclass
class StreamMapper:
    """One streamed line → one chunk; tool calls are numbered across the whole answer."""

    model: str
    chunk_id: str = field(default_factory=new_completion_id)
    created: int = field(default_factory=lambda: int(time.time()))
    usage: Usage | None = None
    _calls: int = 0

    def chunk(self, line: OllamaChat) -> ChatCompletionChunk | None:
        self.model = line.model or self.model
        deltas = [
            ToolCallDelta(
                index=self._calls + k,
                id=_call_id(),
                type="function",
                function={"name": c.function.name, "arguments": json.dumps(c.function.arguments)},
            )
            for k, c in enumerate(line.message.tool_calls or [])
        ]
        self._calls += len(deltas)
        finish = _finish(line.done_reason, self._calls > 0) if line.done else None
        if line.done:
            self.usage = line.usage()
        if not line.message.content and not deltas and finish is None:
            return None
        delta = Delta(content=line.message.content or None, tool_calls=deltas or None)
        choice = ChunkChoice(delta=delta, finish_reason=finish)
        return ChatCompletionChunk(
            id=self.chunk_id, model=self.model, created=self.created, choices=[choice]
        )
