"""Output and error file lines, in OpenAI's format.

    {"id": "batch_req_...", "custom_id": "...",
     "response": {"status_code": 200, "request_id": "...", "body": {...}}, "error": null}

A line that got an HTTP answer (a completion, or a provider's refusal) carries it in
``response``; a line that never ran (``batch_expired``, ``batch_cancelled``) has
``response: null`` and an ``error`` with a ``code`` and ``message``. Results are stored in
Redis prefixed with ``o`` (output file) or ``e`` (error file).
"""

from __future__ import annotations

import secrets
from typing import Any

import orjson

from relay_core.dispatch.envelope import Reply
from relay_core.errors import ErrorInfo, RelayError
from relay_core.schemas.chat import COMPLETION_ID_PREFIX, new_completion_id

OUTPUT, ERROR = b"o", b"e"

DROPPED_MESSAGES = {
    "batch_expired": "This request could not be executed before the completion window expired.",
    "batch_cancelled": "This request was not executed because the batch was cancelled.",
    "input_file_unavailable": "The batch's input file was deleted before this request was sent.",
    "model_not_found": "No enabled provider serves this request's model any more.",
}


def _line(
    custom_id: str,
    response: dict[str, Any] | None,
    error: dict[str, Any] | None,
    relay: dict[str, Any] | None = None,
) -> bytes:
    line = {
        "id": "batch_req_" + secrets.token_hex(12),
        "custom_id": custom_id,
        "response": response,
        "error": error,
    }
    if relay:  # Relay's own account of the line: its answer checks, a cache hit
        line["relay"] = relay
    return orjson.dumps(line)


def relay_part(reply: Reply) -> dict[str, Any]:
    """What Relay adds to a line's record: the answers checked against its response_format
    (every repair and failover, docs/answers.md) and whether the cache answered."""
    part: dict[str, Any] = {}
    if reply.checks:
        part["answer_checks"] = [c.model_dump(mode="json") for c in reply.checks]
    if reply.cached:
        part["cache"] = "hit"
    return part


def success(custom_id: str, request_id: str, reply: Reply) -> bytes:
    """A stored result (``o`` + line) for a completion: its ``body`` as the API answers it,
    with the completion's own ``chatcmpl-…`` id (a fresh one when the upstream's id is in
    another form); ``request_id`` is Relay's id for the line's request."""
    if reply.embedding is not None:  # an embeddings line: the vectors as the API answers them
        response = {
            "status_code": 200,
            "request_id": request_id,
            "body": reply.embedding.model_dump(mode="json"),
        }
        return OUTPUT + _line(custom_id, response, None, relay_part(reply))
    body = (
        {}
        if reply.completion is None
        else reply.completion.model_dump(mode="json", exclude_none=True)
    )
    upstream_id = body.get("id")
    if not (isinstance(upstream_id, str) and upstream_id.startswith(COMPLETION_ID_PREFIX)):
        body["id"] = new_completion_id()
    response = {"status_code": 200, "request_id": request_id, "body": body}
    return OUTPUT + _line(custom_id, response, None, relay_part(reply))


def _provider_body(info: ErrorInfo) -> dict[str, Any] | None:
    if not info.upstream_body:
        return None
    try:
        parsed = orjson.loads(info.upstream_body)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def failure(
    custom_id: str, request_id: str, info: ErrorInfo, relay: dict[str, Any] | None = None
) -> bytes:
    """A stored result (``e`` + line) for a request that failed for good: the provider's own
    status and body when it answered, else Relay's error as the API would render it."""
    exc = RelayError.from_info(info)
    status = info.upstream_status or exc.status_code
    body = _provider_body(info) or exc.body()
    response = {"status_code": status, "request_id": request_id, "body": body}
    return ERROR + _line(custom_id, response, None, relay)


def dropped(custom_id: str, code: str) -> bytes:
    """A stored result (``e`` + line) for a request that never ran."""
    error = {"code": code, "message": DROPPED_MESSAGES.get(code, code)}
    return ERROR + _line(custom_id, None, error)


def split(stored: bytes) -> tuple[bool, bytes]:
    """(is an output line, the JSONL line without its prefix)."""
    return stored[:1] == OUTPUT, stored[1:]
