"""Reading vectors out of an embeddings answer, for every family: a list of numbers each, or
the answer is malformed (and the request fails over)."""

from __future__ import annotations

from typing import Any

from relay_core.errors import InvalidRequest
from relay_core.providers._http import CallContext
from relay_core.schemas.embeddings import EmbeddingRequest


def vector(value: Any, ctx: CallContext, text: str) -> list[float]:
    """One vector: a non-empty list of numbers."""
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in value)
    ):
        raise ctx.malformed("an embedding is not a list of numbers", text)
    return [float(x) for x in value]


def text_inputs(request: EmbeddingRequest, family: str) -> list[str]:
    """The inputs as text, for a family that takes no token ids (refused before sending)."""
    texts = request.texts()
    if texts is None:
        raise InvalidRequest(
            f"The {family} API embeds text only: this request's input is token ids.",
            param="input",
        )
    return texts


def count_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
