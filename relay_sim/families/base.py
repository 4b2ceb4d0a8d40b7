"""What an API family is to the simulator: it reads a request in its wire format into a
:class:`~relay_sim.answer.Call`, and writes answers, stream frames and errors back
in that format. Families hold no state; the pipeline does the rest (auth, limits, faults).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, Protocol

from starlette.requests import Request

from relay_core.catalogue.models import ApiFamily
from relay_sim.answer import Answer, Call
from relay_sim.config import SimProvider
from relay_sim.faults import SimFault
from relay_sim.vectors import token_text, vector

Json = dict[str, Any]

# A 200 body that is not the wire format: what a misbehaving proxy in front of a provider sends.
GARBAGE = b"<html><body><h1>502 Bad Gateway</h1><p>upstream sent junk</p></body></html>"


class Family(Protocol):
    api: ApiFamily
    stream_media_type: str
    retry_after_header: bool  # whether its 429s carry ``retry-after``

    def api_key(self, request: Request) -> str | None:
        """The key the client sent, where this family sends it."""
        ...

    def parse_chat(self, body: object, request: Request) -> Call:
        """Read a chat request (raises a ``bad_request`` :class:`SimFault`)."""
        ...

    def render_chat(self, call: Call, answer: Answer) -> bytes: ...

    def frames(self, call: Call, answer: Answer, size: int) -> Iterator[bytes]:
        """The streamed answer, frame by frame (already framed: SSE events or NDJSON lines)."""
        ...

    def garbage(self, stream: bool) -> bytes: ...

    def error(self, fault: SimFault) -> tuple[int, bytes]:
        """Status code and body of ``fault`` in this family's error shape."""
        ...

    def models_body(self, provider: SimProvider) -> bytes: ...


def new_id() -> str:
    return os.urandom(12).hex()


def bearer(request: Request) -> str | None:
    value = request.headers.get("authorization")
    if value is None or value[:7].lower() != "bearer ":
        return None
    return value[7:].strip()


def json_object(body: object) -> Json:
    if not isinstance(body, dict):
        raise SimFault.bad_request("the request body must be a JSON object")
    return body


def text_of(content: object, text_key: str = "text") -> str:
    """Text of a message content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p[text_key]
            for p in content
            if isinstance(p, dict)
            and isinstance(p.get(text_key), str)
            and p.get("type", "text") == "text"
        )
    return ""


def optional_count(value: object, param: str) -> int | None:
    """A positive integer field, or None when absent."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SimFault.bad_request(f"{param} must be a positive integer", param=param)
    return value


def required_str(body: Json, param: str) -> str:
    value = body.get(param)
    if not isinstance(value, str) or not value:
        raise SimFault.bad_request(f"{param}: field required", param=param)
    return value


def required_list(body: Json, param: str) -> list[Any]:
    value = body.get(param)
    if not isinstance(value, list) or not value:
        raise SimFault.bad_request(f"{param}: a non-empty list is required", param=param)
    return value


def read_messages(
    messages: list[Any], content_key: str = "content", default_role: str = "user"
) -> tuple[str, int]:
    """The last user message's text, and the length of every message's text."""
    last_user, chars = "", 0
    for message in messages:
        if not isinstance(message, dict):
            raise SimFault.bad_request("each message must be an object", param="messages")
        text = text_of(message.get(content_key))
        chars += len(text)
        if message.get("role", default_role) == "user":
            last_user = text
    return last_user, chars


def function_tools(tools: object) -> tuple[str, ...]:
    """Tool names from OpenAI-shaped ``tools`` (``[{"type": "function", "function": {...}}]``)."""
    if not isinstance(tools, list):
        return ()
    return tuple(
        t["function"]["name"]
        for t in tools
        if isinstance(t, dict)
        and isinstance(t.get("function"), dict)
        and isinstance(t["function"].get("name"), str)
    )


def embedding_inputs(raw: object, *, tokens: bool) -> tuple[str, ...]:
    """An embeddings ``input``: a string or a list of strings; with ``tokens`` (OpenAI's
    format) also a list of token ids or of token-id lists, each read as its seed text."""
    if isinstance(raw, str) and raw:
        return (raw,)
    if isinstance(raw, list) and raw:
        if all(isinstance(i, str) and i for i in raw):
            return tuple(raw)
        ids = [i for i in raw if isinstance(i, int) and not isinstance(i, bool)]
        if tokens and len(ids) == len(raw):
            return (token_text(ids),)
        if tokens and all(isinstance(i, list) and i for i in raw):
            return tuple(token_text([int(x) for x in i]) for i in raw)
    kinds = "a string, a list of strings or token ids" if tokens else "a string or strings"
    raise SimFault.bad_request(f"input must be {kinds}, none of them empty", param="input")


def call_vectors(call: Call) -> list[list[float]]:
    """Each input's vector, of the length asked (the model's own, or shorter)."""
    native, asked = call.embed_native, call.embed_dimensions
    keep = asked if asked is not None and asked < native else None
    return [vector(text, native, keep) for text in call.embed_inputs or ()]


def sse(data: bytes, event: str | None = None, sep: bytes = b"\n\n") -> bytes:
    head = b"event: " + event.encode() + b"\n" if event is not None else b""
    return head + b"data: " + data + sep
