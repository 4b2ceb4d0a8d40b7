"""OpenAI's wire format (also Groq, Mistral, Cerebras, OpenRouter, Together, DeepSeek, ...).

``POST /v1/chat/completions`` answers a ``chat.completion`` object, or with ``stream: true``
SSE ``chat.completion.chunk`` events ending in ``data: [DONE]`` (and, with
``stream_options.include_usage``, a last chunk with empty ``choices`` and the ``usage``).
Errors are ``{"error": {"message", "type", "param", "code"}}``; a 429's ``type`` says which
budget ran out (``requests`` or ``tokens``) and its ``code`` is ``rate_limit_exceeded``.
"""

from __future__ import annotations

import base64
import struct
import time
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

import orjson
from starlette.requests import Request

from relay_core.catalogue.models import ApiFamily
from relay_sim.answer import Answer, Call
from relay_sim.config import SimProvider
from relay_sim.families.base import (
    GARBAGE,
    Json,
    bearer,
    call_vectors,
    embedding_inputs,
    function_tools,
    json_object,
    new_id,
    optional_count,
    read_messages,
    required_list,
    required_str,
    sse,
)
from relay_sim.faults import FaultKind, SimFault
from relay_sim.limits import LimitKind

# fault → (status, error.type, error.code)
_ERRORS: Mapping[FaultKind, tuple[int, str, str | None]] = MappingProxyType(
    {
        FaultKind.bad_request: (400, "invalid_request_error", None),
        FaultKind.context_length_exceeded: (
            400,
            "invalid_request_error",
            "context_length_exceeded",
        ),
        FaultKind.unauthorized: (401, "invalid_request_error", "invalid_api_key"),
        FaultKind.not_found: (404, "invalid_request_error", "unknown_url"),
        FaultKind.model_not_found: (404, "invalid_request_error", "model_not_found"),
        FaultKind.rate_limited: (429, "requests", "rate_limit_exceeded"),
        FaultKind.server_error: (500, "server_error", None),
        FaultKind.unavailable: (503, "server_error", "service_unavailable"),
    }
)


def _usage(answer: Answer, n: int = 1) -> Json:
    completion = answer.completion_tokens * n
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": answer.prompt_tokens + completion,
    }


def _json_asked(response_format: object) -> tuple[bool, dict[str, Any] | None]:
    """Whether ``response_format`` asks for JSON, and its schema if it names one."""
    if not isinstance(response_format, dict):
        return False, None
    kind = response_format.get("type")
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    return kind in ("json_object", "json_schema"), schema if isinstance(schema, dict) else None


def _features(data: dict[str, object]) -> frozenset[str]:
    """What a quirky server may fail on (see ``SimProvider.fails_on``)."""
    found: set[str] = set()
    response_format = data.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        found.add("json_schema")
    messages = data.get("messages")
    for message in messages if isinstance(messages, list) else ():
        if (
            isinstance(message, dict)
            and message.get("role") == "assistant"
            and message.get("content") is None
            and message.get("tool_calls")
        ):
            found.add("null_content")
    return frozenset(found)


def _message(answer: Answer) -> Json:
    if answer.tool is None:
        return {"role": "assistant", "content": answer.content, "refusal": None}
    call = {"id": f"call_{new_id()}", "type": "function"}
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [{**call, "function": {"name": answer.tool, "arguments": "{}"}}],
    }


Chunk = Callable[..., bytes]


def _chunker(head: Json, tail: Json, index: int) -> Chunk:
    """``chunk(delta, finish=None)``: one stream event of choice ``index``."""

    def chunk(delta: Json, finish: str | None = None) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse(orjson.dumps({**head, "choices": [choice], **tail}))

    return chunk


def _choice_frames(call: Call, answer: Answer, size: int, chunk: Chunk) -> Iterator[bytes]:
    """One choice's stream events, from its ``role`` to its ``finish_reason``."""
    if answer.tool is not None:
        start = {"index": 0, "id": f"call_{new_id()}", "type": "function"}
        name = {"name": answer.tool}
        yield chunk(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{**start, "function": {**name, "arguments": ""}}],
            }
        )
        # The arguments in two fragments; a quirky server repeats id, type and name on each.
        call_head, function_head = (start, name) if call.repeat_tool_ids else ({"index": 0}, {})
        for fragment in ("{", "}"):
            function = {**function_head, "arguments": fragment}
            yield chunk({"tool_calls": [{**call_head, "function": function}]})
    else:
        yield chunk({"role": "assistant", "content": ""})
        for piece in answer.pieces(size):
            yield chunk({"content": piece})
    yield chunk({}, answer.finish.value)


def _encoded(vector: list[float], as_base64: bool) -> list[float] | str:
    if not as_base64:
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


class OpenAIFamily:
    api: ApiFamily = "openai"
    stream_media_type = "text/event-stream"
    retry_after_header = True

    def api_key(self, request: Request) -> str | None:
        return bearer(request)

    def parse_chat(self, body: object, request: Request) -> Call:
        data = json_object(body)
        model = required_str(data, "model")
        text, chars = read_messages(required_list(data, "messages"))
        max_tokens_param = optional_count(data.get("max_tokens"), "max_tokens")
        max_tokens = optional_count(data.get("max_completion_tokens"), "max_completion_tokens")
        if max_tokens is None:
            max_tokens = max_tokens_param
        stream = data.get("stream") is True
        options = data.get("stream_options")
        usage = stream and isinstance(options, dict) and options.get("include_usage") is True
        tools = function_tools(data.get("tools"))
        call = Call(model, text, chars, max_tokens, stream, usage, tools)
        call.features = _features(data)
        call.json_mode, call.json_schema = _json_asked(data.get("response_format"))
        call.max_tokens_param = max_tokens_param
        call.n = optional_count(data.get("n"), "n") or 1
        return call

    def parse_embeddings(self, body: object, request: Request) -> Call:
        data = json_object(body)
        model = required_str(data, "model")
        inputs = embedding_inputs(data.get("input"), tokens=True)
        fmt = data.get("encoding_format", "float")
        if fmt not in ("float", "base64"):
            raise SimFault.bad_request("encoding_format must be float or base64", "encoding_format")
        call = Call(model, inputs[0], sum(map(len, inputs)), embed_inputs=inputs)
        call.embed_dimensions = optional_count(data.get("dimensions"), "dimensions")
        call.embed_base64 = fmt == "base64"
        return call

    def render_chat(self, call: Call, answer: Answer) -> bytes:
        return orjson.dumps(
            {
                "id": f"chatcmpl-{new_id()}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": answer.model,
                "choices": [
                    {
                        "index": i,
                        "message": _message(answer),
                        "logprobs": None,
                        "finish_reason": answer.finish.value,
                    }
                    for i in range(call.n)
                ],
                "usage": _usage(answer, call.n),
                "system_fingerprint": "fp_sim",
            }
        )

    def render_embeddings(self, call: Call, answer: Answer) -> bytes:
        data = [
            {"object": "embedding", "index": i, "embedding": _encoded(v, call.embed_base64)}
            for i, v in enumerate(call_vectors(call))
        ]
        usage = {"prompt_tokens": answer.prompt_tokens, "total_tokens": answer.prompt_tokens}
        return orjson.dumps({"object": "list", "data": data, "model": answer.model, "usage": usage})

    def frames(self, call: Call, answer: Answer, size: int) -> Iterator[bytes]:
        head = {
            "id": f"chatcmpl-{new_id()}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": answer.model,
            "system_fingerprint": "fp_sim",
        }
        tail: Json = {"usage": None} if call.include_usage else {}
        for index in range(call.n):
            yield from _choice_frames(call, answer, size, _chunker(head, tail, index))
        if call.include_usage:
            yield sse(orjson.dumps({**head, "choices": [], "usage": _usage(answer, call.n)}))
        yield b"data: [DONE]\n\n"

    def garbage(self, stream: bool) -> bytes:
        return sse(GARBAGE) if stream else GARBAGE

    def error(self, fault: SimFault) -> tuple[int, bytes]:
        status, kind, code = _ERRORS[fault.kind]
        if fault.kind is FaultKind.rate_limited:
            kind = (fault.limit or LimitKind.requests).value
        error = {"message": fault.message, "type": kind, "param": fault.param, "code": code}
        return status, orjson.dumps({"error": error})

    def models_body(self, provider: SimProvider) -> bytes:
        data = [
            {"id": m.id, "object": "model", "created": 0, "owned_by": provider.name}
            for m in provider.models
        ]
        return orjson.dumps({"object": "list", "data": data})
