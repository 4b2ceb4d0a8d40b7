"""Anthropic Messages answers (whole, and the streamed event sequence) → OpenAI shapes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from relay_core.providers._http import CallContext
from relay_core.schemas.chat import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    ChunkChoice,
    Delta,
    FinishReason,
    FunctionCall,
    ToolCall,
    ToolCallDelta,
    Usage,
    new_completion_id,
)

STOP_REASONS: Mapping[str, FinishReason] = MappingProxyType(
    {
        "end_turn": "stop",
        "stop_sequence": "stop",
        "pause_turn": "stop",
        "max_tokens": "length",
        "tool_use": "tool_calls",
        "refusal": "content_filter",
    }
)
"""Anthropic ``stop_reason`` → OpenAI ``finish_reason`` (anything else is ``stop``)."""


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class AnthropicBlock(_Wire):
    type: str
    text: str | None = None
    id: str | None = None
    name: str | None = None
    input: dict[str, Any] | None = None


class AnthropicUsage(_Wire):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None

    def prompt_tokens(self) -> int | None:
        parts = (self.input_tokens, self.cache_creation_input_tokens, self.cache_read_input_tokens)
        known = [n for n in parts if n is not None]
        return sum(known) if known else None


class AnthropicMessage(_Wire):
    id: str
    type: Literal["message"]
    content: list[AnthropicBlock]
    model: str | None = None
    stop_reason: str | None = None
    usage: AnthropicUsage | None = None


def _finish(reason: str | None) -> FinishReason:
    return STOP_REASONS.get(reason or "end_turn", "stop")


def _usage(prompt: int, completion: int) -> Usage:
    return Usage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


def parse_message(data: Any, ctx: CallContext, text: str) -> AnthropicMessage:
    try:
        return AnthropicMessage.model_validate(data)
    except ValidationError:
        raise ctx.malformed("the answer is not an Anthropic message", text) from None


def to_completion(message: AnthropicMessage, model: str) -> ChatCompletion:
    texts = [b.text for b in message.content if b.type == "text" and b.text is not None]
    calls = [
        ToolCall(
            id=block.id or "",
            function=FunctionCall(name=block.name or "", arguments=json.dumps(block.input or {})),
        )
        for block in message.content
        if block.type == "tool_use"
    ]
    choice = Choice(
        message=AssistantMessage(
            content="".join(texts) if texts or not calls else None, tool_calls=calls or None
        ),
        finish_reason=_finish(message.stop_reason),
    )
    usage = None
    if message.usage is not None:
        usage = _usage(message.usage.prompt_tokens() or 0, message.usage.output_tokens or 0)
    return ChatCompletion(
        id=new_completion_id(), model=message.model or model, choices=[choice], usage=usage
    )


class AnthropicDelta(_Wire):
    type: str | None = None
    text: str | None = None
    partial_json: str | None = None
    stop_reason: str | None = None


class AnthropicEvent(_Wire):
    """Any streamed event; which fields are set depends on ``type``."""

    type: str
    message: AnthropicMessage | None = None
    index: int | None = None
    content_block: AnthropicBlock | None = None
    delta: AnthropicDelta | None = None
    usage: AnthropicUsage | None = None


def parse_event(data: Any, ctx: CallContext, text: str) -> AnthropicEvent:
    try:
        return AnthropicEvent.model_validate(data)
    except ValidationError:
        raise ctx.malformed("a stream event is not an Anthropic event", text) from None


_Step = tuple[Delta | None, FinishReason | None]
"""What one event adds to the answer: a delta, a finish reason, or neither."""


@dataclass
class StreamMapper:
    """Folds the Messages event stream into OpenAI chunks, one event at a time."""

    model: str
    chunk_id: str = field(default_factory=new_completion_id)
    created: int = field(default_factory=lambda: int(time.time()))
    input_tokens: int | None = None
    output_tokens: int | None = None
    _tool_index: dict[int, int] = field(default_factory=dict)

    def usage(self) -> Usage | None:
        if self.input_tokens is None and self.output_tokens is None:
            return None
        return _usage(self.input_tokens or 0, self.output_tokens or 0)

    def chunk(self, event: AnthropicEvent) -> ChatCompletionChunk | None:
        handler = self._handlers().get(event.type)
        if handler is None:  # ping, content_block_stop, message_stop, future event types
            return None
        delta, finish = handler(event)
        if delta is None and finish is None:
            return None
        choice = ChunkChoice(delta=delta or Delta(), finish_reason=finish)
        return ChatCompletionChunk(
            id=self.chunk_id, model=self.model, created=self.created, choices=[choice]
        )

    def _handlers(self) -> Mapping[str, Callable[[AnthropicEvent], _Step]]:
        return {
            "message_start": self._message_start,
            "content_block_start": self._block_start,
            "content_block_delta": self._block_delta,
            "message_delta": self._message_delta,
        }

    def _record(self, usage: AnthropicUsage | None) -> None:
        if usage is None:
            return
        prompt = usage.prompt_tokens()
        if prompt is not None:
            self.input_tokens = prompt
        if usage.output_tokens is not None:
            self.output_tokens = usage.output_tokens

    def _message_start(self, event: AnthropicEvent) -> _Step:
        if event.message is not None:
            self.model = event.message.model or self.model
            self._record(event.message.usage)
        return Delta(role="assistant", content=""), None

    def _block_start(self, event: AnthropicEvent) -> _Step:
        block = event.content_block
        if block is None or event.index is None:
            return None, None
        if block.type == "text" and block.text:
            return Delta(content=block.text), None
        if block.type != "tool_use":
            return None, None
        index = self._tool_index.setdefault(event.index, len(self._tool_index))
        call = ToolCallDelta(
            index=index,
            id=block.id,
            type="function",
            function={"name": block.name or "", "arguments": ""},
        )
        return Delta(tool_calls=[call]), None

    def _block_delta(self, event: AnthropicEvent) -> _Step:
        delta = event.delta
        if delta is None:
            return None, None
        if delta.type == "text_delta" and delta.text:
            return Delta(content=delta.text), None
        if delta.type == "input_json_delta" and event.index in self._tool_index:
            call = ToolCallDelta(
                index=self._tool_index[event.index],
                function={"arguments": delta.partial_json or ""},
            )
            return Delta(tool_calls=[call]), None
        return None, None  # thinking, signatures, citations: not part of OpenAI's shape

    def _message_delta(self, event: AnthropicEvent) -> _Step:
        self._record(event.usage)
        if event.delta is None or event.delta.stop_reason is None:
            return None, None
        return Delta(), _finish(event.delta.stop_reason)
