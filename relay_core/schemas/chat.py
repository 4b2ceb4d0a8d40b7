"""OpenAI's chat-completions wire types: what clients send and what Relay answers.

Every provider client maps from :class:`ChatCompletionRequest` and back to
:class:`ChatCompletion` / :class:`ChatCompletionChunk`. Unknown request fields are kept
(``extra="allow"``) so that OpenAI-family providers receive them unchanged; the other families
reject the ones they cannot honour.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

# What every JSON encoder on the way (orjson in the queue, the providers) can carry: integers
# that fit in 64 bits, nesting no deeper than orjson's limit (255) with room to spare, and
# strings that UTF-8 can encode (JSON's "\ud800" escape decodes to a lone surrogate, which it
# cannot).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_JSON_DEPTH = 64

Path = tuple[str | int, ...]


def json_problem(value: object) -> tuple[str, Path] | None:
    """Why ``value`` (decoded JSON) could not travel on to a provider, and where, or None."""
    stack: list[tuple[object, Path]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        where = f" at '{'.'.join(map(str, path))}'" if path else ""
        if len(path) > MAX_JSON_DEPTH:
            return f"the request is nested deeper than {MAX_JSON_DEPTH} levels{where}", path
        if isinstance(item, str):
            if not item.isascii() and not _utf8(item):
                return f"the string{where} holds a lone surrogate (no UTF-8 can carry it)", path
        elif isinstance(item, int) and not isinstance(item, bool):
            if not INT64_MIN <= item <= INT64_MAX:
                return f"the integer{where} does not fit in 64 bits", path
        elif isinstance(item, dict):
            for k, v in item.items():
                if isinstance(k, str) and not k.isascii() and not _utf8(k):
                    return f"a key{where} holds a lone surrogate (no UTF-8 can carry it)", path
                stack.append((v, (*path, k)))
        elif isinstance(item, list):
            stack.extend((v, (*path, i)) for i, v in enumerate(item))
    return None


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


Role = Literal["system", "developer", "user", "assistant", "tool", "function"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "function_call"]


class FunctionCall(BaseModel):
    name: str
    arguments: str = ""


class ToolCall(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Role
    # str, or a list of content parts ({"type": "text", "text": ...}, {"type": "image_url", ...})
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    def text(self) -> str:
        """The message's text, with the text parts of a multi-part content joined."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")


class ToolFunction(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None


class Tool(BaseModel):
    type: Literal["function"] = "function"
    function: ToolFunction


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """``POST /v1/chat/completions`` body, plus Relay's routing extensions."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[Message] = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    n: int | None = Field(default=None, ge=1, le=128)
    seed: int | None = None
    tools: list[Tool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    user: str | None = None
    # Relay extensions: narrow the candidates of ``meta-model`` or a model alias.
    model_type: str | None = None
    model_scale: Literal["small", "medium", "large"] | None = None
    model_name: str | None = None
    # Relay extension: how to fit a conversation longer than the model's window (docs/context.md).
    context_mode: Literal["off", "static", "dynamic", "reservoir", "adaptive"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _portable(cls, data: Any) -> Any:
        problem = json_problem(data)
        if problem is not None:
            message, path = problem
            error = PydanticCustomError("unportable_value", message)
            detail = InitErrorDetails(type=error, loc=path, input=data)
            raise ValidationError.from_exception_data(cls.__name__, [detail])
        return data

    def output_limit(self) -> int | None:
        """The requested output cap, whichever of the two OpenAI spellings was used."""
        return self.max_completion_tokens or self.max_tokens

    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def extras(self) -> dict[str, Any]:
        """Fields the client sent that this model does not name (passed through or refused)."""
        return dict(self.model_extra or {})


RELAY_FIELDS = frozenset({"model_type", "model_scale", "model_name", "context_mode"})


class Usage(BaseModel):
    model_config = ConfigDict(extra="allow")

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def is_estimate(self) -> bool:
        """Relay estimated these counts (the upstream sent none): marked ``estimated: true``."""
        return (self.model_extra or {}).get("estimated") is True


def _with_nulls(data: Any, *names: str) -> Any:
    """``data`` (a model's dump) with ``names`` present, ``null`` when dropped as None."""
    if isinstance(data, dict):
        for name in names:
            data.setdefault(name, None)
    return data


class AssistantMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["assistant"] = "assistant"
    content: str | None = None
    tool_calls: list[ToolCall] | None = None
    refusal: str | None = None

    @model_serializer(mode="wrap")
    def _openai_nulls(self, handler: SerializerFunctionWrapHandler) -> Any:
        """``content`` and ``refusal`` are always there, ``null`` when empty, as OpenAI sends
        them (a dump with ``exclude_none`` would drop them; strict clients read them)."""
        return _with_nulls(handler(self), "content", "refusal")


class Choice(BaseModel):
    model_config = ConfigDict(extra="allow")

    index: int = 0
    message: AssistantMessage
    finish_reason: FinishReason | None = "stop"
    logprobs: Any = None

    @model_serializer(mode="wrap")
    def _openai_nulls(self, handler: SerializerFunctionWrapHandler) -> Any:
        """``logprobs`` is always there, ``null`` when not asked for (as OpenAI sends it)."""
        return _with_nulls(handler(self), "logprobs")


COMPLETION_ID_PREFIX = "chatcmpl-"


def new_completion_id() -> str:
    return f"{COMPLETION_ID_PREFIX}{uuid.uuid4().hex}"


class ChatCompletion(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str = Field(default_factory=new_completion_id)
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[Choice]
    usage: Usage | None = None
    system_fingerprint: str | None = None


class ToolCallDelta(BaseModel):
    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: dict[str, str] | None = None  # {"name"?: ..., "arguments"?: ...}


class Delta(BaseModel):
    model_config = ConfigDict(extra="allow")  # e.g. DeepSeek's reasoning_content passes through

    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: FinishReason | None = None
    logprobs: Any = None


class ChatCompletionChunk(BaseModel):
    model_config = ConfigDict(extra="allow")  # e.g. Groq's x_groq passes through

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None
