"""OpenAI's embeddings wire types: what clients send to ``POST /v1/embeddings`` and what Relay
answers.

``input`` is a string, a list of strings, a list of token ids or a list of token-id lists,
as OpenAI takes it. Relay always asks the upstream for floats and writes the vectors in the
client's ``encoding_format`` itself (``base64``: each vector's float32 values, little-endian,
base64-encoded, exactly as OpenAI's SDK decodes them), so every provider family answers both.
"""

from __future__ import annotations

import base64
import struct
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from relay_core.errors import InvalidRequest

TokenIds = list[int]
EmbeddingInput = str | list[str] | TokenIds | list[TokenIds]
EncodingFormat = Literal["float", "base64"]
MAX_EMBEDDING_INPUTS = 2048  # OpenAI's own limit per request


class EmbeddingRequest(BaseModel):
    """One ``POST /v1/embeddings`` body. Unknown fields are kept for OpenAI-family providers."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    input: EmbeddingInput
    encoding_format: EncodingFormat = "float"
    dimensions: PositiveInt | None = None
    user: str | None = None

    def texts(self) -> list[str] | None:
        """The inputs as text, or None when they are token ids."""
        value = self.input
        if isinstance(value, str):
            return [value]
        if all(isinstance(v, str) for v in value):
            return [v for v in value if isinstance(v, str)]
        return None

    def token_lists(self) -> list[TokenIds]:
        """The inputs as token-id lists (``[]`` when they are text)."""
        value = self.input
        if isinstance(value, str) or not value or isinstance(value[0], str):
            return []
        if isinstance(value[0], int):
            return [[v for v in value if isinstance(v, int)]]
        return [v for v in value if isinstance(v, list)]

    def count(self) -> int:
        """How many vectors the answer holds."""
        texts = self.texts()
        return len(texts) if texts is not None else len(self.token_lists())

    def estimated_tokens(self) -> int:
        """Relay's estimate of the prompt tokens: characters / 4 (rounded up) for text, the
        ids themselves for token input. What the limiter reserves before the call."""
        texts = self.texts()
        if texts is None:
            return sum(len(ids) for ids in self.token_lists())
        return sum((len(t) + 3) // 4 for t in texts)


def check_inputs(request: EmbeddingRequest, max_inputs: int) -> None:
    """Refuse an input OpenAI refuses: nothing to embed, an empty string or token list, or
    more inputs than ``max_inputs`` (``RELAY_EMBEDDINGS_MAX_INPUTS``)."""
    value = request.input
    if isinstance(value, str):
        if not value:
            raise InvalidRequest("'input' is an empty string: give text to embed.", param="input")
        return
    if not value:
        raise InvalidRequest("'input' is an empty list: give at least one input.", param="input")
    count = request.count()
    if count > max_inputs:
        raise InvalidRequest(
            f"'input' holds {count} inputs; at most {max_inputs} are taken per request "
            "(split it, or raise RELAY_EMBEDDINGS_MAX_INPUTS).",
            param="input",
        )
    texts = request.texts()
    items: list[str] | list[TokenIds] = texts if texts is not None else request.token_lists()
    empty = [i for i, item in enumerate(items) if not item]
    if empty:
        raise InvalidRequest(
            f"'input[{empty[0]}]' is empty: every input needs text (or token ids).",
            param=f"input[{empty[0]}]",
        )


class EmbeddingUsage(BaseModel):
    model_config = ConfigDict(extra="allow")

    prompt_tokens: int = 0
    total_tokens: int = 0

    def is_estimate(self) -> bool:
        """Relay estimated the count (the upstream sent none)."""
        return (self.model_extra or {}).get("estimated") is True


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str  # floats, or base64 of float32 (``encoding_format``)


class EmbeddingResponse(BaseModel):
    """The answer, in OpenAI's shape (``openai.types.CreateEmbeddingResponse``)."""

    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


def encode_vector(vector: list[float], encoding: EncodingFormat) -> list[float] | str:
    """``vector`` as the client asked for it: floats, or base64 of little-endian float32."""
    if encoding == "float":
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def decode_vector(value: list[float] | str) -> list[float]:
    """The floats of an encoded vector (the inverse of :func:`encode_vector`)."""
    if isinstance(value, list):
        return value
    raw = base64.b64decode(value)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def embedding_response(
    vectors: list[list[float]],
    model: str,
    prompt_tokens: int | None,
    request: EmbeddingRequest,
) -> EmbeddingResponse:
    """The client's answer: one entry per input in order, encoded as asked; the usage is
    Relay's estimate (marked ``estimated``) when the upstream counted none."""
    if prompt_tokens is None:
        tokens = request.estimated_tokens()
        usage = EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens, estimated=True)
    else:
        usage = EmbeddingUsage(prompt_tokens=prompt_tokens, total_tokens=prompt_tokens)
    data = [
        Embedding(index=i, embedding=encode_vector(v, request.encoding_format))
        for i, v in enumerate(vectors)
    ]
    return EmbeddingResponse(data=data, model=model, usage=usage)


def new_embedding_id() -> str:
    return f"emb-{uuid.uuid4().hex}"
