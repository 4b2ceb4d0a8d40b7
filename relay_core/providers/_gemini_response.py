"""Gemini ``GenerateContentResponse`` → OpenAI completion and chunks.

The wire type is validated with pydantic; an answer that is not one (or has neither candidates
nor a ``promptFeedback.blockReason``) is :class:`UpstreamMalformed`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

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

FINISH_REASONS: Mapping[str, FinishReason] = MappingProxyType(
    {
        "STOP": "stop",
        "MAX_TOKENS": "length",
        "SAFETY": "content_filter",
        "RECITATION": "content_filter",
        "BLOCKLIST": "content_filter",
        "PROHIBITED_CONTENT": "content_filter",
        "SPII": "content_filter",
        "IMAGE_SAFETY": "content_filter",
    }
)
"""Gemini ``finishReason`` → OpenAI; any other reason (``OTHER``, ...) is ``stop``."""


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class GeminiFunctionCall(_Wire):
    name: str
    args: dict[str, Any] = {}
    id: str | None = None


class GeminiPart(_Wire):
    text: str | None = None
    thought: bool = False
    function_call: GeminiFunctionCall | None = None


class GeminiContent(_Wire):
    role: str | None = None
    parts: list[GeminiPart] = []


class GeminiCandidate(_Wire):
    content: GeminiContent | None = None
    finish_reason: str | None = None
    index: int | None = None


class GeminiUsage(_Wire):
    prompt_token_count: int = 0
    candidates_token_count: int = 0
    thoughts_token_count: int = 0
    total_token_count: int | None = None

    def to_usage(self) -> Usage:
        completion = self.candidates_token_count + self.thoughts_token_count
        total = self.total_token_count
        return Usage(
            prompt_tokens=self.prompt_token_count,
            completion_tokens=completion,
            total_tokens=total if total is not None else self.prompt_token_count + completion,
        )


class GeminiPromptFeedback(_Wire):
    block_reason: str | None = None


class GeminiResponse(_Wire):
    candidates: list[GeminiCandidate] = []
    usage_metadata: GeminiUsage | None = None
    prompt_feedback: GeminiPromptFeedback | None = None
    model_version: str | None = None
    response_id: str | None = None

    def blocked(self) -> bool:
        return self.prompt_feedback is not None and self.prompt_feedback.block_reason is not None


def parse_response(
    data: Any, ctx: CallContext, text: str, *, partial: bool = False
) -> GeminiResponse:
    """Validate one response (``partial``: a stream event, which may carry only usage)."""
    try:
        response = GeminiResponse.model_validate(data)
    except ValidationError:
        raise ctx.malformed("the answer is not a GenerateContentResponse", text) from None
    empty = not response.candidates and not response.blocked()
    if empty and not (partial and response.usage_metadata is not None):
        raise ctx.malformed("the answer has no candidates", text)
    return response


def _new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def _split(candidate: GeminiCandidate) -> tuple[list[str], list[GeminiFunctionCall]]:
    parts = candidate.content.parts if candidate.content else []
    texts = [p.text for p in parts if p.text is not None and not p.thought]
    calls = [p.function_call for p in parts if p.function_call is not None]
    return texts, calls


def _finish(reason: str | None, has_calls: bool) -> FinishReason:
    if has_calls and reason in (None, "STOP"):
        return "tool_calls"
    return FINISH_REASONS.get(reason or "STOP", "stop")


def _tool_call(call: GeminiFunctionCall) -> ToolCall:
    arguments = FunctionCall(name=call.name, arguments=_dumps(call.args))
    return ToolCall(id=call.id or _new_call_id(), function=arguments)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def to_completion(response: GeminiResponse, model: str) -> ChatCompletion:
    choices = [_choice(c, i) for i, c in enumerate(response.candidates)]
    if not choices:  # the prompt itself was blocked
        empty = AssistantMessage(content=None)
        choices = [Choice(index=0, message=empty, finish_reason="content_filter")]
    usage = response.usage_metadata.to_usage() if response.usage_metadata else None
    return ChatCompletion(
        id=new_completion_id(), model=response.model_version or model, choices=choices, usage=usage
    )


def _choice(candidate: GeminiCandidate, position: int) -> Choice:
    texts, calls = _split(candidate)
    tool_calls = [_tool_call(c) for c in calls] or None
    content = "".join(texts) if texts or not calls else None
    return Choice(
        index=candidate.index if candidate.index is not None else position,
        message=AssistantMessage(content=content, tool_calls=tool_calls),
        finish_reason=_finish(candidate.finish_reason, bool(calls)),
    )


@dataclass
class StreamMapper:
    """Turns each streamed response into one chunk, keeping tool-call indexes per choice."""

    model: str
    chunk_id: str = field(default_factory=new_completion_id)
    created: int = field(default_factory=lambda: int(time.time()))
    usage: Usage | None = None
    _calls_seen: dict[int, int] = field(default_factory=dict)

    def chunk(self, response: GeminiResponse) -> ChatCompletionChunk | None:
        if response.usage_metadata is not None:
            self.usage = response.usage_metadata.to_usage()
        if response.model_version:
            self.model = response.model_version
        choices = [
            choice
            for position, candidate in enumerate(response.candidates)
            if (choice := self._choice(candidate, position)) is not None
        ]
        if not response.candidates and response.blocked():
            choices = [ChunkChoice(index=0, delta=Delta(), finish_reason="content_filter")]
        if not choices:
            return None
        return ChatCompletionChunk(
            id=self.chunk_id, model=self.model, created=self.created, choices=choices
        )

    def _choice(self, candidate: GeminiCandidate, position: int) -> ChunkChoice | None:
        index = candidate.index if candidate.index is not None else position
        texts, calls = _split(candidate)
        first = self._calls_seen.get(index, 0)
        self._calls_seen[index] = first + len(calls)
        deltas = [_call_delta(first + k, call) for k, call in enumerate(calls)]
        delta = Delta(content="".join(texts) if texts else None, tool_calls=deltas or None)
        finish = None
        if candidate.finish_reason is not None:
            finish = _finish(candidate.finish_reason, self._calls_seen[index] > 0)
        if delta.content is None and not deltas and finish is None:
            return None
        return ChunkChoice(index=index, delta=delta, finish_reason=finish)


def _call_delta(index: int, call: GeminiFunctionCall) -> ToolCallDelta:
    return ToolCallDelta(
        index=index,
        id=call.id or _new_call_id(),
        type="function",
        function={"name": call.name, "arguments": _dumps(call.args)},
    )
