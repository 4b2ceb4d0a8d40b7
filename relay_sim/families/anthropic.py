"""Anthropic's Messages API.

``POST /v1/messages`` needs ``x-api-key``, the ``anthropic-version`` header and ``max_tokens``
(400 ``invalid_request_error`` otherwise). It answers a ``message`` object, or with
``stream: true`` the SSE events ``message_start``, ``content_block_start``, ``ping``,
``content_block_delta``..., ``content_block_stop``, ``message_delta``, ``message_stop``.
Errors are ``{"type": "error", "error": {"type", "message"}}``; a 429 is ``rate_limit_error``
with ``retry-after`` and ``anthropic-ratelimit-*`` headers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType

import orjson
from starlette.requests import Request

from relay_core.catalogue.models import ApiFamily
from relay_sim.answer import Answer, Call, Finish
from relay_sim.config import SimProvider
from relay_sim.families.base import (
    GARBAGE,
    Json,
    json_object,
    new_id,
    optional_count,
    read_messages,
    required_list,
    required_str,
    sse,
    text_of,
)
from relay_sim.faults import FaultKind, SimFault
from relay_sim.json_answer import schema_in_text

_ERRORS: Mapping[FaultKind, tuple[int, str]] = MappingProxyType(
    {
        FaultKind.bad_request: (400, "invalid_request_error"),
        FaultKind.context_length_exceeded: (400, "invalid_request_error"),
        FaultKind.unauthorized: (401, "authentication_error"),
        FaultKind.not_found: (404, "not_found_error"),
        FaultKind.model_not_found: (404, "not_found_error"),
        FaultKind.rate_limited: (429, "rate_limit_error"),
        FaultKind.server_error: (500, "api_error"),
        FaultKind.unavailable: (503, "overloaded_error"),
    }
)
_STOP: Mapping[Finish, str] = MappingProxyType(
    {Finish.stop: "end_turn", Finish.length: "max_tokens", Finish.tool_calls: "tool_use"}
)


def _tools(tools: object) -> tuple[str, ...]:
    if not isinstance(tools, list):
        return ()
    return tuple(t["name"] for t in tools if isinstance(t, dict) and isinstance(t.get("name"), str))


def _block(answer: Answer, text: str) -> Json:
    if answer.tool is not None:
        return {"type": "tool_use", "id": f"toolu_{new_id()}", "name": answer.tool, "input": {}}
    return {"type": "text", "text": text}


def _event(kind: str, data: Json) -> bytes:
    return sse(orjson.dumps({"type": kind, **data}), event=kind)


class AnthropicFamily:
    api: ApiFamily = "anthropic"
    stream_media_type = "text/event-stream"
    retry_after_header = True

    def api_key(self, request: Request) -> str | None:
        return request.headers.get("x-api-key")

    def parse_chat(self, body: object, request: Request) -> Call:
        if "anthropic-version" not in request.headers:
            raise SimFault.bad_request("anthropic-version: header is required")
        data = json_object(body)
        model = required_str(data, "model")
        max_tokens = optional_count(data.get("max_tokens"), "max_tokens")
        if max_tokens is None:
            raise SimFault.bad_request("max_tokens: Field required", param="max_tokens")
        text, chars = read_messages(required_list(data, "messages"))
        system = text_of(data.get("system"))
        chars += len(system)
        stream = data.get("stream") is True
        call = Call(model, text, chars, max_tokens, stream, tools=_tools(data.get("tools")))
        call.json_mode = "JSON" in system  # no JSON mode: a system prompt that asks for it
        call.json_schema = schema_in_text(system) if call.json_mode else None
        return call

    def _message(self, answer: Answer, content: list[Json], output_tokens: int) -> Json:
        return {
            "id": f"msg_{new_id()}",
            "type": "message",
            "role": "assistant",
            "model": answer.model,
            "content": content,
            "stop_reason": None if not content else _STOP[answer.finish],
            "stop_sequence": None,
            "usage": {"input_tokens": answer.prompt_tokens, "output_tokens": output_tokens},
        }

    def render_chat(self, call: Call, answer: Answer) -> bytes:
        message = self._message(answer, [_block(answer, answer.content)], answer.completion_tokens)
        return orjson.dumps(message)

    def frames(self, call: Call, answer: Answer, size: int) -> Iterator[bytes]:
        yield _event("message_start", {"message": self._message(answer, [], 1)})
        yield _event("content_block_start", {"index": 0, "content_block": _block(answer, "")})
        yield _event("ping", {})
        if answer.tool is not None:
            delta: Json = {"type": "input_json_delta", "partial_json": "{}"}
            yield _event("content_block_delta", {"index": 0, "delta": delta})
        else:
            for piece in answer.pieces(size):
                delta = {"type": "text_delta", "text": piece}
                yield _event("content_block_delta", {"index": 0, "delta": delta})
        yield _event("content_block_stop", {"index": 0})
        stop = {"stop_reason": _STOP[answer.finish], "stop_sequence": None}
        usage = {"output_tokens": answer.completion_tokens}
        yield _event("message_delta", {"delta": stop, "usage": usage})
        yield _event("message_stop", {})

    def garbage(self, stream: bool) -> bytes:
        return sse(GARBAGE, event="content_block_delta") if stream else GARBAGE

    def error(self, fault: SimFault) -> tuple[int, bytes]:
        status, kind = _ERRORS[fault.kind]
        message = (
            f"model: {fault.model}" if fault.kind is FaultKind.model_not_found else fault.message
        )
        body = {
            "type": "error",
            "error": {"type": kind, "message": message},
            "request_id": f"req_{new_id()}",
        }
        return status, orjson.dumps(body)

    def models_body(self, provider: SimProvider) -> bytes:
        data = [
            {
                "type": "model",
                "id": m.id,
                "display_name": m.id,
                "created_at": "2025-01-01T00:00:00Z",
            }
            for m in provider.models
        ]
        first, last = data[0]["id"], data[-1]["id"]
        return orjson.dumps({"data": data, "has_more": False, "first_id": first, "last_id": last})
