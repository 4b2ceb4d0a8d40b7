"""Which (provider, model) pairs may serve an embeddings request, and in what order.

The targets serving the named model (its id or alias, at every provider; or one
``provider/model``) come first. After them, with ``RELAY_EMBEDDINGS_FAILOVER=same_dimension``
(the default), every other embeddings model whose vectors have the same length, so a request
fails over when the named model's providers cannot serve; never to a model of another
dimension, whose vectors would not fit the caller's index. A ``provider/model`` request
fails over only with ``X-Relay-Fallback: any``, as a chat request does.

A model serves ``d`` dimensions when it declares ``d`` (``dimensions`` in the catalogue), or
declares more and ``shortens`` (it takes OpenAI's ``dimensions`` / Gemini's
``outputDimensionality``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from relay_core.catalogue.models import ModelConfig, ProviderConfig, Tier
from relay_core.errors import InvalidRequest, ModelNotFound
from relay_core.routing.ranking import IDLE, LiveState
from relay_core.routing.targets import Selection, Target, all_targets, pinned_target
from relay_core.schemas.embeddings import EmbeddingRequest
from relay_core.settings import Mode

EmbeddingFailover = Literal["same_dimension", "same_model"]


def serves(model: ModelConfig, dimensions: int) -> bool:
    """``model`` can answer vectors of ``dimensions`` numbers."""
    native = model.dimensions
    if not model.embeddings or native is None:
        return False
    return native == dimensions or (model.shortens and dimensions < native)


def _named(providers: Sequence[ProviderConfig], sel: Selection, mode: Mode) -> list[Target]:
    """The targets the request names, or a clear 404/400."""
    pinned = pinned_target(providers, sel.model)
    if pinned is not None:
        named = [pinned]
    else:
        named = [t for t in all_targets(providers) if t.provider.model(sel.model) is t.model]
    if not named:
        raise ModelNotFound(
            f"The embeddings model '{sel.model}' does not exist or no enabled provider serves "
            "it. GET /v1/models lists the models.",
            param="model",
        )
    embedding = [t for t in named if t.model.embeddings]
    if not embedding:
        raise InvalidRequest(
            f"'{sel.model}' is a chat model: it serves no embeddings. Name an embeddings "
            "model (one with embeddings: true in the catalogue).",
            param="model",
        )
    allowed = [t for t in embedding if mode is not Mode.free or t.provider.tier is Tier.free]
    if not allowed:
        raise InvalidRequest(
            f"Model '{sel.model}' is on a paid tier and RELAY_MODE is 'free'.", param="model"
        )
    return allowed


def embedding_targets(
    providers: Sequence[ProviderConfig],
    sel: Selection,
    *,
    dimensions: int | None,
    mode: Mode,
    failover: EmbeddingFailover = "same_dimension",
) -> tuple[list[Target], int]:
    """The targets that may serve the request, the named ones first, and the length of the
    vectors they answer: ``dimensions`` when the request asks, else the named model's."""
    named = _named(providers, sel, mode)
    want = dimensions if dimensions is not None else named[0].model.dimensions
    assert want is not None  # an embeddings model declares its dimensions (the catalogue)
    able = [t for t in named if serves(t.model, want)]
    if not able:
        native = named[0].model.dimensions
        raise InvalidRequest(
            f"'{sel.model}' answers vectors of {native} dimensions and cannot shorten them to "
            f"{want}: ask for dimensions={native}, or name a model of {want} dimensions.",
            param="dimensions",
        )
    pinned = pinned_target(providers, sel.model) is not None
    if failover == "same_model" or (pinned and not sel.fallback_any):
        return able, want
    others = [
        t
        for t in all_targets(providers)
        if t not in able
        and serves(t.model, want)
        and (mode is not Mode.free or t.provider.tier is Tier.free)
    ]
    return [*able, *others], want


def rank_embedding_targets(
    targets: Sequence[Target], live: Mapping[str, LiveState], named: int
) -> list[Target]:
    """The named targets (the first ``named``) before the fallbacks; within each, those that
    can take a request now first: closed breakers, the shortest wait, the most headroom."""

    def order(t: Target) -> tuple[bool, float, float]:
        s = live.get(t.key, IDLE)
        return (s.breaker_open, s.wait_s, -s.headroom)

    first, rest = list(targets[:named]), list(targets[named:])
    return sorted(first, key=order) + sorted(rest, key=order)


def named_count(providers: Sequence[ProviderConfig], sel: Selection, targets: list[Target]) -> int:
    """How many of ``targets`` (as :func:`embedding_targets` ordered them) the request names."""
    pinned = pinned_target(providers, sel.model)
    if pinned is not None:
        return 1
    return sum(1 for t in targets if t.provider.model(sel.model) is t.model)


def with_dimensions(request: EmbeddingRequest, dimensions: int) -> EmbeddingRequest:
    """The request as the workers send it: its vectors' length made explicit, so a fallback
    model that ``shortens`` is asked for the same length as the named one answers."""
    if request.dimensions == dimensions:
        return request
    return request.model_copy(update={"dimensions": dimensions})
