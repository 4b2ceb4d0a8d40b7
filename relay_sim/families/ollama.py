"""Ollama's native API.

``POST /api/chat`` streams by default (``"stream": false`` to get one object): NDJSON lines
``{"model", "created_at", "message": {...}, "done": false}``, the last one ``"done": true``
with ``done_reason``, ``prompt_eval_count``, ``eval_count`` and the ``*_duration`` fields in
nanoseconds. The output cap is ``options.num_predict``. No auth (a bearer key is checked only
when one is configured, as behind a proxy). Errors are ``{"error": "..."}``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType

import orjson
from starlette.requests import Request

from relay_core.catalogue.models import ApiFamily
from relay_sim.answer import Answer, Call, Finish
from relay_sim.config import SimProvider
from relay_sim.families.base import (
    GARBAGE,
    Json,
    bearer,
    call_vectors,
    embedding_inputs,
    function_tools,
    json_object,
    optional_count,
    read_messages,
    required_list,
    required_str,
)
from relay_sim.faults import FaultKind, SimFault

_STATUS: Mapping[FaultKind, int] = MappingProxyType(
    {
        FaultKind.bad_request: 400,
        FaultKind.context_length_exceeded: 400,
        FaultKind.unauthorized: 401,
        FaultKind.not_found: 404,
        FaultKind.model_not_found: 404,
        FaultKind.rate_limited: 429,
        FaultKind.server_error: 500,
        FaultKind.unavailable: 503,
    }
)
_DONE: Mapping[Finish, str] = MappingProxyType(
    {Finish.stop: "stop", Finish.length: "length", Finish.tool_calls: "stop"}
)
_NS_PER_TOKEN = 10_000_000  # a simulated 100 tokens/s


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _num_predict(data: Json) -> int | None:
    options = data.get("options")
    value = options.get("num_predict") if isinstance(options, dict) else None
    if value is None or value == -1:  # -1: no limit
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SimFault.bad_request("options.num_predict must be a positive integer or -1")
    return value


def _line(body: Json) -> bytes:
    return orjson.dumps(body) + b"\n"


class OllamaFamily:
    api: ApiFamily = "ollama"
    stream_media_type = "application/x-ndjson"
    retry_after_header = True

    def api_key(self, request: Request) -> str | None:
        return bearer(request)

    def parse_chat(self, body: object, request: Request) -> Call:
        data = json_object(body)
        model = required_str(data, "model")
        text, chars = read_messages(required_list(data, "messages"))
        stream = data.get("stream", True) is not False
        call = Call(
            model, text, chars, _num_predict(data), stream, tools=function_tools(data.get("tools"))
        )
        fmt = data.get("format")
        call.json_mode = fmt == "json" or isinstance(fmt, dict)
        call.json_schema = fmt if isinstance(fmt, dict) else None
        return call

    def parse_embeddings(self, body: object, request: Request) -> Call:
        """``/api/embed``: ``input`` a string or strings, ``dimensions`` optional."""
        data = json_object(body)
        model = required_str(data, "model")
        inputs = embedding_inputs(data.get("input"), tokens=False)
        call = Call(model, inputs[0], sum(map(len, inputs)), embed_inputs=inputs)
        call.embed_dimensions = optional_count(data.get("dimensions"), "dimensions")
        return call

    def render_embeddings(self, call: Call, answer: Answer) -> bytes:
        return orjson.dumps(
            {
                "model": answer.model,
                "embeddings": call_vectors(call),
                "total_duration": answer.prompt_tokens * _NS_PER_TOKEN // 10,
                "load_duration": 0,
                "prompt_eval_count": answer.prompt_tokens,
            }
        )

    def _message(self, answer: Answer, content: str) -> Json:
        message: Json = {"role": "assistant", "content": content}
        if answer.tool is not None:
            message["tool_calls"] = [{"function": {"name": answer.tool, "arguments": {}}}]
        return message

    def _done(self, answer: Answer, content: str) -> Json:
        prompt_ns = answer.prompt_tokens * _NS_PER_TOKEN // 10
        eval_ns = answer.completion_tokens * _NS_PER_TOKEN
        return {
            "model": answer.model,
            "created_at": _now(),
            "message": self._message(answer, content),
            "done_reason": _DONE[answer.finish],
            "done": True,
            "total_duration": prompt_ns + eval_ns,
            "load_duration": 0,
            "prompt_eval_count": answer.prompt_tokens,
            "prompt_eval_duration": prompt_ns,
            "eval_count": answer.completion_tokens,
            "eval_duration": eval_ns,
        }

    def render_chat(self, call: Call, answer: Answer) -> bytes:
        return orjson.dumps(self._done(answer, answer.content))

    def frames(self, call: Call, answer: Answer, size: int) -> Iterator[bytes]:
        if answer.tool is not None:
            message = self._message(answer, "")
            yield _line(
                {"model": answer.model, "created_at": _now(), "message": message, "done": False}
            )
        else:
            for piece in answer.pieces(size):
                message = {"role": "assistant", "content": piece}
                yield _line(
                    {"model": answer.model, "created_at": _now(), "message": message, "done": False}
                )
        final = self._done(answer, "")
        final["message"] = {"role": "assistant", "content": ""}
        yield _line(final)

    def garbage(self, stream: bool) -> bytes:
        return GARBAGE + b"\n" if stream else GARBAGE

    def error(self, fault: SimFault) -> tuple[int, bytes]:
        message = fault.message
        if fault.kind is FaultKind.model_not_found:
            message = f'model "{fault.model}" not found, try pulling it first'
        return _STATUS[fault.kind], orjson.dumps({"error": message})

    def models_body(self, provider: SimProvider) -> bytes:
        models = [
            {
                "name": m.id,
                "model": m.id,
                "modified_at": "2025-01-01T00:00:00Z",
                "size": 0,
                "details": {},
            }
            for m in provider.models
        ]
        return orjson.dumps({"models": models})
