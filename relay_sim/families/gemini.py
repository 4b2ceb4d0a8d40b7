"""Google's Gemini API (``generativelanguage.googleapis.com/v1beta``).

``POST /v1beta/models/{model}:generateContent`` answers a ``GenerateContentResponse``;
``:streamGenerateContent?alt=sse`` streams one per SSE event (no end marker; the last one has
``finishReason`` and the full ``usageMetadata``). The key comes in ``x-goog-api-key`` (or
``?key=``). Errors are ``{"error": {"code", "message", "status"}}``; a 429 is
``RESOURCE_EXHAUSTED`` with a ``google.rpc.RetryInfo`` detail (``retryDelay: "36s"``) and no
rate-limit headers at all.

One liberty: a wrong key answers 401 ``UNAUTHENTICATED`` (the real API says 400
``INVALID_ARGUMENT`` with reason ``API_KEY_INVALID``), so that every family fails auth alike.
"""

from __future__ import annotations

import math
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
    call_vectors,
    json_object,
    new_id,
    optional_count,
    read_messages,
    required_list,
    sse,
    text_of,
)
from relay_sim.faults import FaultKind, SimFault
from relay_sim.limits import LimitKind

_ERRORS: Mapping[FaultKind, tuple[int, str]] = MappingProxyType(
    {
        FaultKind.bad_request: (400, "INVALID_ARGUMENT"),
        FaultKind.context_length_exceeded: (400, "INVALID_ARGUMENT"),
        FaultKind.unauthorized: (401, "UNAUTHENTICATED"),
        FaultKind.not_found: (404, "NOT_FOUND"),
        FaultKind.model_not_found: (404, "NOT_FOUND"),
        FaultKind.rate_limited: (429, "RESOURCE_EXHAUSTED"),
        FaultKind.server_error: (500, "INTERNAL"),
        FaultKind.unavailable: (503, "UNAVAILABLE"),
    }
)
_FINISH: Mapping[Finish, str] = MappingProxyType(
    {Finish.stop: "STOP", Finish.length: "MAX_TOKENS", Finish.tool_calls: "STOP"}
)
_QUOTA_METRIC: Mapping[LimitKind, str] = MappingProxyType(
    {
        LimitKind.requests: "generate_content_free_tier_requests",
        LimitKind.tokens: "generate_content_free_tier_input_token_count",
    }
)
_ACTIONS = ("generateContent", "streamGenerateContent")
EMBED_ACTIONS = ("embedContent", "batchEmbedContents")


def _get(data: Json, camel: str, snake: str) -> object:
    """Google's JSON accepts both spellings of a field."""
    return data.get(camel, data.get(snake))


def _tools(tools: object) -> tuple[str, ...]:
    if not isinstance(tools, list):
        return ()
    names: list[str] = []
    for tool in tools:
        declared = (
            _get(tool, "functionDeclarations", "function_declarations")
            if isinstance(tool, dict)
            else None
        )
        if isinstance(declared, list):
            names += [
                d["name"]
                for d in declared
                if isinstance(d, dict) and isinstance(d.get("name"), str)
            ]
    return tuple(names)


def _max_tokens(data: Json) -> int | None:
    config = _get(data, "generationConfig", "generation_config")
    if not isinstance(config, dict):
        return None
    return optional_count(_get(config, "maxOutputTokens", "max_output_tokens"), "maxOutputTokens")


def _action(request: Request) -> tuple[str, str]:
    """``{model}:{action}`` from the path."""
    model, _, action = str(request.path_params["target"]).rpartition(":")
    return model, action


def _embed_request(item: object, param: str) -> tuple[str, int | None]:
    """One ``EmbedContentRequest``: its text and ``outputDimensionality``."""
    data = json_object(item)
    content = data.get("content")
    text = text_of(content.get("parts")) if isinstance(content, dict) else ""
    if not text:
        raise SimFault.bad_request(f"{param}.content: text parts required", param=param)
    dims = _get(data, "outputDimensionality", "output_dimensionality")
    return text, optional_count(dims, "outputDimensionality")


def _target(request: Request) -> tuple[str, bool]:
    """``{model}:{action}`` from the path → (model, streaming?)."""
    model, action = _action(request)
    if not model or action not in _ACTIONS:
        raise SimFault(FaultKind.not_found, f"unknown method {action!r}")
    stream = action == "streamGenerateContent"
    if stream and request.query_params.get("alt") != "sse":
        raise SimFault.bad_request("the simulator streams only with ?alt=sse", param="alt")
    return model, stream


class GeminiFamily:
    api: ApiFamily = "gemini"
    stream_media_type = "text/event-stream"
    retry_after_header = False

    def api_key(self, request: Request) -> str | None:
        return request.headers.get("x-goog-api-key") or request.query_params.get("key")

    def parse_chat(self, body: object, request: Request) -> Call:
        model, stream = _target(request)
        data = json_object(body)
        text, chars = read_messages(required_list(data, "contents"), content_key="parts")
        system = _get(data, "systemInstruction", "system_instruction")
        if isinstance(system, dict):
            chars += len(text_of(system.get("parts")))
        tools = _tools(data.get("tools"))
        call = Call(model, text, chars, _max_tokens(data), stream, tools=tools)
        config = _get(data, "generationConfig", "generation_config")
        if isinstance(config, dict):
            call.json_mode = (
                _get(config, "responseMimeType", "response_mime_type") == "application/json"
            )
            schema = _get(config, "responseJsonSchema", "response_json_schema")
            call.json_schema = schema if isinstance(schema, dict) else None
        return call

    def embeds(self, request: Request) -> bool:
        """The path names an embeddings method (``embedContent``, ``batchEmbedContents``)."""
        return _action(request)[1] in EMBED_ACTIONS

    def parse_embeddings(self, body: object, request: Request) -> Call:
        model, action = _action(request)
        data = json_object(body)
        if action == "embedContent":
            found = [_embed_request(data, "content")]
        else:
            found = [_embed_request(r, "requests") for r in required_list(data, "requests")]
        texts = tuple(text for text, _ in found)
        call = Call(model, texts[0], sum(map(len, texts)), embed_inputs=texts)
        call.embed_dimensions = found[0][1]
        call.embed_batch = action == "batchEmbedContents"
        return call

    def render_embeddings(self, call: Call, answer: Answer) -> bytes:
        values = [{"values": v} for v in call_vectors(call)]
        if call.embed_batch:
            return orjson.dumps({"embeddings": values})
        return orjson.dumps({"embedding": values[0]})

    def _response(self, answer: Answer, parts: list[Json], rid: str, last: bool) -> Json:
        candidate: Json = {"content": {"parts": parts, "role": "model"}, "index": 0}
        usage: Json = {
            "promptTokenCount": answer.prompt_tokens,
            "totalTokenCount": answer.prompt_tokens,
        }
        if last:
            candidate["finishReason"] = _FINISH[answer.finish]
            usage = {
                "promptTokenCount": answer.prompt_tokens,
                "candidatesTokenCount": answer.completion_tokens,
                "totalTokenCount": answer.total_tokens,
            }
        return {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": answer.model,
            "responseId": rid,
        }

    def _parts(self, answer: Answer, text: str) -> list[Json]:
        if answer.tool is not None:
            return [{"functionCall": {"name": answer.tool, "args": {}}}]
        return [{"text": text}]

    def render_chat(self, call: Call, answer: Answer) -> bytes:
        return orjson.dumps(
            self._response(answer, self._parts(answer, answer.content), new_id(), True)
        )

    def frames(self, call: Call, answer: Answer, size: int) -> Iterator[bytes]:
        rid = new_id()
        pieces = [""] if answer.tool is not None else answer.pieces(size)
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            body = self._response(answer, self._parts(answer, piece), rid, last)
            yield sse(orjson.dumps(body), sep=b"\r\n\r\n")

    def garbage(self, stream: bool) -> bytes:
        return sse(GARBAGE, sep=b"\r\n\r\n") if stream else GARBAGE

    def error(self, fault: SimFault) -> tuple[int, bytes]:
        status, code = _ERRORS[fault.kind]
        message = fault.message
        error: Json = {"code": status, "message": message, "status": code}
        if fault.kind is FaultKind.model_not_found:
            error["message"] = (
                f"models/{fault.model} is not found for API version v1beta, or is not supported "
                "for generateContent. Call ListModels to see the list of available models."
            )
        if fault.kind is FaultKind.rate_limited:
            error["message"] = f"You exceeded your current quota. {message}"
            metric = (
                "generativelanguage.googleapis.com/"
                + _QUOTA_METRIC[fault.limit or LimitKind.requests]
            )
            delay = math.ceil(fault.retry_after_s or 1.0)
            error["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [{"quotaMetric": metric}],
                },
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{delay}s"},
            ]
        return status, orjson.dumps({"error": error})

    def models_body(self, provider: SimProvider) -> bytes:
        models = [
            {
                "name": f"models/{m.id}",
                "displayName": m.id,
                "supportedGenerationMethods": ["embedContent"]
                if m.embeddings
                else ["generateContent", "countTokens"],
            }
            for m in provider.models
        ]
        return orjson.dumps({"models": models})
