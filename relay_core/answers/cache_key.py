"""The exact cache's key: a hash of the canonical request.

Everything the client sent goes in — model selection, messages, and every field that changes
the answer (tools, tool_choice, response_format, max_tokens, stop, n, seed, penalties,
temperature, top_p, and any field Relay does not know, which an OpenAI-family provider
receives) — except the fields that change only how or for whom the answer is delivered
(:data:`NON_OUTPUT_FIELDS`). Keys are sorted and ``null`` fields left out, so the order in
which a client wrote its JSON never matters. The settings that change every answer (the style
directive, normalization) and whether failover beyond a named provider is allowed are part of
the key too.
"""

from __future__ import annotations

import hashlib

import orjson

from relay_core.schemas.chat import ChatCompletionRequest
from relay_core.settings import Settings

# Fields that change how or for whom an answer is delivered, never the answer itself.
NON_OUTPUT_FIELDS = frozenset({"stream", "stream_options", "user", "metadata", "store"})
KEY_VERSION = 1  # bumped when the canonical form changes: old entries are never read


def canonical_request(
    request: ChatCompletionRequest, settings: Settings, *, fallback_any: bool = False
) -> bytes:
    body = request.model_dump(mode="json", exclude_none=True, exclude=set(NON_OUTPUT_FIELDS))
    for name in NON_OUTPUT_FIELDS:  # unknown fields (extras) are not covered by exclude
        body.pop(name, None)
    document = {
        "v": KEY_VERSION,
        "request": body,
        "fallback_any": fallback_any,
        "style": settings.style_directive.strip(),
        "normalize": settings.normalize_output,
    }
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)


def request_digest(
    request: ChatCompletionRequest, settings: Settings, *, fallback_any: bool = False
) -> str:
    """The sha256 of the canonical request (hex)."""
    canonical = canonical_request(request, settings, fallback_any=fallback_any)
    return hashlib.sha256(canonical).hexdigest()
