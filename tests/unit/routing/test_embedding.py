"""Embeddings requests: validation, the catalogue's dimensions, which targets may serve, and
what an envelope carries."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from relay_core.catalogue.models import ModelConfig, ProviderConfig
from relay_core.dispatch.envelope import Candidate, Envelope
from relay_core.errors import InvalidRequest, ModelNotFound
from relay_core.routing.embedding import embedding_targets, named_count, serves, with_dimensions
from relay_core.routing.targets import Selection, resolve_targets
from relay_core.schemas.chat import ChatCompletionRequest
from relay_core.schemas.embeddings import (
    EmbeddingRequest,
    check_inputs,
    decode_vector,
    encode_vector,
)
from relay_core.settings import Mode


def emb(mid: str, dims: int, **extra: Any) -> ModelConfig:
    return ModelConfig(id=mid, embeddings=True, dimensions=dims, **extra)


def prov(name: str, *models: ModelConfig, api: str = "openai") -> ProviderConfig:
    return ProviderConfig(name=name, api=api, base_url="http://x", models=list(models))


PROVIDERS = [
    prov("a", emb("small", 32, aliases=["vec"]), ModelConfig(id="chatty")),
    prov("b", emb("small", 32)),
    prov("c", emb("other", 32)),
    prov("d", emb("wide", 64, shortens=True)),
    prov("e", emb("wider", 128)),
]


def targets(model: str, dims: int | None = None, **kw: Any) -> tuple[list[str], int]:
    sel = Selection(model, embeddings=True, fallback_any=kw.pop("fallback_any", False))
    found, want = embedding_targets(PROVIDERS, sel, dimensions=dims, mode=Mode.free, **kw)
    return [t.key for t in found], want


def test_the_named_model_first_then_every_model_of_its_dimension():
    keys, want = targets("small")
    assert want == 32
    assert keys[:2] == ["a/small", "b/small"]
    assert set(keys[2:]) == {"c/other", "d/wide"}  # wide shortens to 32; wider never
    assert "e/wider" not in keys


def test_same_model_only_when_configured():
    assert targets("small", failover="same_model")[0] == ["a/small", "b/small"]


def test_a_pinned_target_fails_over_only_when_asked():
    assert targets("a/small")[0] == ["a/small"]
    assert len(targets("a/small", fallback_any=True)[0]) == 4


def test_dimensions_route_to_models_that_shorten():
    keys, want = targets("wide", 16)
    assert (keys, want) == (["d/wide"], 16)
    with pytest.raises(InvalidRequest) as info:
        targets("small", 16)
    assert info.value.param == "dimensions"


def test_unknown_and_chat_models_are_clear_errors():
    with pytest.raises(ModelNotFound):
        targets("nope")
    with pytest.raises(InvalidRequest) as info:
        targets("chatty")
    assert info.value.param == "model"
    assert "chat model" in info.value.message


def test_embeddings_models_never_serve_chat():
    chat = resolve_targets(PROVIDERS, Selection("auto"), mode=Mode.free, meta_model="auto")
    assert [t.key for t in chat] == ["a/chatty"]


def test_serves_and_named_count():
    assert serves(emb("w", 64, shortens=True), 8)
    assert not serves(emb("w", 64), 8)
    sel = Selection("small", embeddings=True)
    found, _ = embedding_targets(PROVIDERS, sel, dimensions=None, mode=Mode.free)
    assert named_count(PROVIDERS, sel, found) == 2


def test_selection_round_trips_with_its_dimensions():
    sel = Selection("vec", embeddings=True, dimensions=16)
    assert Selection.decode(sel.encode()) == sel
    chat = Selection("m", "text", None, None)
    assert Selection.decode(chat.encode()) == chat


def test_the_catalogue_declares_dimensions():
    with pytest.raises(ValidationError, match="dimensions"):
        ModelConfig(id="e", embeddings=True)
    with pytest.raises(ValidationError, match="not an embeddings model"):
        ModelConfig(id="e", dimensions=8)
    with pytest.raises(ValidationError, match="serves no embeddings"):
        prov("x", emb("e", 8), api="anthropic")


@pytest.mark.parametrize(
    ("value", "param"),
    [("", "input"), ([], "input"), (["a", ""], "input[1]"), ([[1], []], "input[1]")],
)
def test_empty_inputs_are_refused(value: Any, param: str):
    with pytest.raises(InvalidRequest) as info:
        check_inputs(EmbeddingRequest(model="m", input=value), 10)
    assert info.value.param == param


def test_too_many_inputs_are_refused():
    check_inputs(EmbeddingRequest(model="m", input=["a"] * 10), 10)
    with pytest.raises(InvalidRequest, match="at most 10"):
        check_inputs(EmbeddingRequest(model="m", input=["a"] * 11), 10)


def test_inputs_of_every_shape():
    assert EmbeddingRequest(model="m", input="one").texts() == ["one"]
    ids = EmbeddingRequest(model="m", input=[1, 2, 3])
    assert (ids.texts(), ids.token_lists(), ids.count()) == (None, [[1, 2, 3]], 1)
    lists = EmbeddingRequest(model="m", input=[[1], [2, 3]])
    assert (lists.count(), lists.estimated_tokens()) == (2, 3)
    assert EmbeddingRequest(model="m", input=["abcdefgh", "x"]).estimated_tokens() == 3
    with pytest.raises(ValidationError):
        EmbeddingRequest.model_validate({"model": "m", "input": "x", "encoding_format": "hex"})


def test_base64_is_float32_little_endian():
    v = [0.5, -1.0, 0.25]
    encoded = encode_vector(v, "base64")
    assert encoded == "AAAAPwAAgL8AAIA+"
    assert decode_vector(encoded) == v
    assert encode_vector(v, "float") is v


def test_an_envelope_carries_either_request_through_its_message():
    embed = with_dimensions(EmbeddingRequest(model="vec", input=["a"]), 32)
    chat = ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    )
    for request, kind in ((embed, EmbeddingRequest), (chat, ChatCompletionRequest)):
        env = Envelope(
            id="x", request=request, candidates=[Candidate(provider="a", model="m")], deadline=1
        )
        back = Envelope.model_validate(env.model_dump(mode="json", exclude_none=True))
        assert type(back.request) is kind
        assert back.request == request
    with pytest.raises(TypeError):
        _ = Envelope(
            id="y", request=embed, candidates=[Candidate(provider="a", model="m")], deadline=1
        ).chat
