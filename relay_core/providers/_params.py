"""Which request parameters a non-OpenAI family maps, drops, or refuses.

Every parameter the client set (declared fields and ``extra="allow"`` extras alike) must be
either *mapped* by the family, on its documented *drop* list (docs/providers.md), or equal to
the value that means "the default" (``n: 1``, ``logprobs: false``, ...). Anything else is an
:class:`InvalidRequest` naming the parameter: Relay never silently changes what was asked.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from relay_core.errors import InvalidRequest
from relay_core.schemas.chat import RELAY_FIELDS, ChatCompletionRequest

ALWAYS_HANDLED = frozenset({"model", "messages", "stream", "stream_options"}) | RELAY_FIELDS

NO_OP_VALUES: Mapping[str, object] = MappingProxyType(
    {"n": 1, "logprobs": False, "parallel_tool_calls": True}
)
"""Values that ask for nothing beyond the default, accepted by every family."""


def sent_params(request: ChatCompletionRequest) -> Iterator[tuple[str, Any]]:
    """``(name, value)`` of every top-level parameter that is set to something (not null)."""
    for name in type(request).model_fields:
        value = getattr(request, name)
        if value is not None:
            yield name, value
    for name, value in request.extras().items():
        if value is not None:
            yield name, value


@dataclass(frozen=True)
class ParamPolicy:
    family: str
    mapped: frozenset[str]
    dropped: frozenset[str]

    def check(self, request: ChatCompletionRequest) -> None:
        for name, value in sent_params(request):
            if name in ALWAYS_HANDLED or name in self.mapped or name in self.dropped:
                continue
            if name in NO_OP_VALUES and value == NO_OP_VALUES[name]:
                continue
            raise InvalidRequest(
                f"{name!r} is not supported by {self.family} providers", param=name
            )


def response_format_type(request: ChatCompletionRequest) -> str | None:
    """``response_format.type`` (``text``, ``json_object``, ``json_schema``), validated."""
    if request.response_format is None:
        return None
    kind = request.response_format.get("type")
    if kind not in ("text", "json_object", "json_schema"):
        raise InvalidRequest(
            f"response_format type {kind!r} is not supported", param="response_format"
        )
    return str(kind)


def json_schema(request: ChatCompletionRequest) -> dict[str, Any]:
    """The schema of a ``json_schema`` response format."""
    spec = (request.response_format or {}).get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    if not isinstance(schema, dict):
        raise InvalidRequest(
            "response_format.json_schema.schema must be an object", param="response_format"
        )
    return schema
