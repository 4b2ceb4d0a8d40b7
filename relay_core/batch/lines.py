"""One line of a batch input file: check it as OpenAI does, and say where it lives.

A valid line is ``{"custom_id": str, "method": "POST", "url": <the batch endpoint>,
"body": <a request for that endpoint>}``. Unlike OpenAI, ``body.model`` may be any model Relay
routes (an alias, ``provider/model``, the meta-model) with the ``model_type`` /
``model_scale`` / ``model_name`` filters, and different lines may name different models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from relay_core.batch.models import BatchError, Endpoint, workflow_name
from relay_core.errors import InvalidRequest
from relay_core.routing.targets import Selection
from relay_core.schemas.chat import ChatCompletionRequest
from relay_core.schemas.embeddings import MAX_EMBEDDING_INPUTS, EmbeddingRequest, check_inputs

MAX_CUSTOM_ID = 512


@dataclass(frozen=True, slots=True)
class LineRef:
    """Where line ``index`` of a batch is: its bytes in the input file, and its route."""

    offset: int
    length: int
    route: int
    custom_id: str

    def encode(self) -> str:
        return f"{self.offset} {self.length} {self.route} {self.custom_id}"

    @classmethod
    def decode(cls, raw: bytes | str) -> LineRef:
        text = raw.decode() if isinstance(raw, bytes) else raw
        offset, length, route, custom_id = text.split(" ", 3)
        return cls(int(offset), int(length), int(route), custom_id)


@dataclass(frozen=True, slots=True)
class CheckedLine:
    custom_id: str
    route: Selection


def _error(code: str, message: str, line: int, param: str | None = None) -> BatchError:
    return BatchError(code=code, message=message, line=line, param=param)


def _param(loc: tuple[int | str, ...]) -> str:
    return ".".join(["body", *(str(p) for p in loc)])


def request_body(line: dict[str, Any], default_model: str | None) -> dict[str, Any]:
    """The line's body, with the batch's default model when the line names none."""
    body: dict[str, Any] = line["body"]
    if default_model and not body.get("model"):
        body = {**body, "model": default_model}
    return body


def _check_custom_id(custom_id: Any, n: int) -> BatchError | None:
    if not isinstance(custom_id, str) or not custom_id:
        return _error(
            "missing_required_parameter", f"Line {n} has no custom_id.", n, param="custom_id"
        )
    if len(custom_id) > MAX_CUSTOM_ID:
        return _error(
            "invalid_custom_id",
            f"Line {n}: custom_id is longer than {MAX_CUSTOM_ID} characters.",
            n,
            param="custom_id",
        )
    return None


def _check_envelope(data: Any, n: int, endpoint: Endpoint | str) -> BatchError | None:
    if not isinstance(data, dict):
        return _error("invalid_json_line", f"Line {n} is not a JSON object.", n)
    problem = _check_custom_id(data.get("custom_id"), n)
    if problem is not None:
        return problem
    if data.get("method") != "POST":
        return _error("invalid_method", f"Line {n}: method must be 'POST'.", n, param="method")
    if data.get("url") != str(endpoint):
        return _error(
            "invalid_url",
            f"Line {n}: url {data.get('url')!r} is not the batch endpoint '{endpoint}'.",
            n,
            param="url",
        )
    if not isinstance(data.get("body"), dict):
        return _error("invalid_request", f"Line {n}: body must be a JSON object.", n, "body")
    return None


def _run_line(data: dict[str, Any], n: int, model: str | None) -> CheckedLine | BatchError:
    """A workflow batch's line: its body is ``{"input": ...}``, routed on ``model``."""
    if set(data["body"]) != {"input"}:
        return _error("invalid_request", f'Line {n}: body must be {{"input": ...}}.', n, "body")
    return CheckedLine(custom_id=data["custom_id"], route=Selection(model or ""))


def _invalid(exc: ValidationError, n: int) -> BatchError:
    first = exc.errors()[0]
    param = _param(tuple(first["loc"]))
    return _error("invalid_request", f"Line {n}: invalid {param}: {first['msg']}.", n, param)


def _check_embeddings(body: dict[str, Any], n: int, custom_id: str) -> CheckedLine | BatchError:
    """An embeddings line: OpenAI's body, with inputs to embed (at most OpenAI's 2,048)."""
    try:
        request = EmbeddingRequest.model_validate(body)
        check_inputs(request, MAX_EMBEDDING_INPUTS)
    except ValidationError as exc:
        return _invalid(exc, n)
    except InvalidRequest as exc:
        param = _param((exc.param or "input",))
        return _error("invalid_request", f"Line {n}: {exc.message}", n, param)
    route = Selection(request.model, embeddings=True, dimensions=request.dimensions)
    return CheckedLine(custom_id=custom_id, route=route)


def check_line(
    raw: bytes, n: int, endpoint: Endpoint | str, default_model: str | None
) -> CheckedLine | BatchError:
    """Check line number ``n`` (1-based) of a batch file. A workflow batch's line
    (``/v1/workflows/<name>``) has a body ``{"input": ...}``; its route is the batch's
    default model (its workflow's first call's, set when the batch was made)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _error("invalid_json_line", f"Line {n} is not valid JSON.", n)
    problem = _check_envelope(data, n, endpoint)
    if problem is not None:
        return problem
    if workflow_name(str(endpoint)) is not None:
        return _run_line(data, n, default_model)
    return _body_line(data, n, endpoint, default_model)


def _body_line(
    data: dict[str, Any], n: int, endpoint: Endpoint | str, default_model: str | None
) -> CheckedLine | BatchError:
    """A chat or embeddings line: OpenAI's body, its model the batch's when it names none."""
    body = request_body(data, default_model)
    if not body.get("model"):
        return _error(
            "missing_required_parameter", f"Line {n}: body.model is missing.", n, "body.model"
        )
    if endpoint == Endpoint.embeddings.value:
        return _check_embeddings(body, n, data["custom_id"])
    return _check_chat(body, n, data["custom_id"])


def _check_chat(body: dict[str, Any], n: int, custom_id: str) -> CheckedLine | BatchError:
    try:
        request = ChatCompletionRequest.model_validate(body)
    except ValidationError as exc:
        return _invalid(exc, n)
    if request.stream:
        return _error(
            "invalid_request", f"Line {n}: batches do not stream.", n, param="body.stream"
        )
    route = Selection(request.model, request.model_type, request.model_scale, request.model_name)
    return CheckedLine(custom_id=custom_id, route=route)
