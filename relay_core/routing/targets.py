"""Which (provider, model) pairs may serve a request: the candidate set, before ranking.

``model`` may be the meta-model (``meta-model`` by default, or ``auto``): every enabled model;
``provider/model``: that one pinned; or a model id or alias: every provider serving it. The
Relay fields ``model_type``, ``model_scale`` and ``model_name`` (a substring of the id) narrow
the set. The tier mode decides whether paid providers take part.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from relay_core.catalogue.models import ModelConfig, ProviderConfig, Tier
from relay_core.errors import InvalidRequest, ModelNotFound
from relay_core.settings import Mode


@dataclass(frozen=True, slots=True)
class Target:
    provider: ProviderConfig
    model: ModelConfig

    @property
    def key(self) -> str:
        return f"{self.provider.name}/{self.model.id}"


@dataclass(frozen=True, slots=True)
class Selection:
    """What the client asked for, in Relay's terms."""

    model: str
    model_type: str | None = None
    model_scale: str | None = None
    model_name: str | None = None
    fallback_any: bool = False
    # An embeddings request (relay_core/routing/embedding.py): embeddings models only,
    # answering vectors of ``dimensions`` (None: the named model's own).
    embeddings: bool = False
    dimensions: int | None = None

    def encode(self) -> str:
        """The model selection as JSON (how a batch keeps its lines' distinct selections)."""
        fields = [self.model, self.model_type, self.model_scale, self.model_name]
        return json.dumps([*fields, True, self.dimensions] if self.embeddings else fields)

    @classmethod
    def decode(cls, raw: bytes | str) -> Selection:
        model, model_type, model_scale, model_name, *rest = json.loads(raw)
        if not rest:
            return cls(str(model), model_type, model_scale, model_name)
        return cls(str(model), embeddings=True, dimensions=rest[1])


META_ALIASES = frozenset({"auto"})
EMBEDDING_TYPES = frozenset({"embedding", "embeddings"})


def all_targets(providers: Sequence[ProviderConfig]) -> list[Target]:
    return [Target(p, m) for p in providers for m in p.models]


def _narrow(targets: list[Target], sel: Selection) -> list[Target]:
    out = targets
    if sel.model_type:
        out = [t for t in out if sel.model_type in t.model.type]
    if sel.model_scale:
        out = [t for t in out if t.model.scale == sel.model_scale]
    if sel.model_name:
        needle = sel.model_name.lower()
        out = [t for t in out if needle in t.model.id.lower()]
    return out


def _describe_filters(base: list[Target], sel: Selection) -> tuple[str, str]:
    """The filters as text, and the one at fault: the first that, applied in turn to ``base``,
    leaves no target (``model`` when no filter is set)."""
    m = sel.model
    given = [
        (name, value, alone)
        for name, value, alone in (
            ("model_type", sel.model_type, Selection(m, model_type=sel.model_type)),
            ("model_scale", sel.model_scale, Selection(m, model_scale=sel.model_scale)),
            ("model_name", sel.model_name, Selection(m, model_name=sel.model_name)),
        )
        if value
    ]
    parts = ", ".join(f"{name}={value!r}" for name, value, _ in given)
    left = base
    for name, _, alone in given:
        left = _narrow(left, alone)
        if not left:
            return parts, name
    return parts, "model"


def _chats(t: Target) -> bool:
    """Embedding-only models never answer a chat request."""
    return not t.model.embeddings and not set(t.model.type) <= EMBEDDING_TYPES


def _by_tier(targets: list[Target], mode: Mode) -> list[Target]:
    if mode is Mode.free:
        return [t for t in targets if t.provider.tier is Tier.free]
    return targets


def pinned_target(providers: Sequence[ProviderConfig], model: str) -> Target | None:
    """The target a ``provider/model`` name pins, if it names one."""
    if "/" not in model:
        return None
    name, _, model_id = model.partition("/")
    for p in providers:
        if p.name == name:
            m = p.model(model_id)
            if m is not None:
                return Target(p, m)
    return None


def resolve_targets(
    providers: Sequence[ProviderConfig], sel: Selection, *, mode: Mode, meta_model: str
) -> list[Target]:
    """Every target that may serve ``sel``, or a clear 404/400 naming the field at fault."""
    everything = [t for t in _by_tier(all_targets(providers), mode) if _chats(t)]
    if sel.model == meta_model or sel.model in META_ALIASES:
        base = everything
    else:
        pinned = pinned_target(providers, sel.model)
        if pinned is not None:
            if mode is Mode.free and pinned.provider.tier is Tier.paid:
                raise InvalidRequest(
                    f"Model '{sel.model}' is on a paid tier and RELAY_MODE is 'free'.",
                    param="model",
                )
            rest = [t for t in everything if t != pinned] if sel.fallback_any else []
            return [pinned, *_narrow(rest, sel)]
        base = [t for t in everything if t.provider.model(sel.model) is t.model]
        if not base:
            raise ModelNotFound(
                f"The model '{sel.model}' does not exist or no enabled provider serves it. "
                f"GET /v1/models lists the models, or use '{meta_model}'.",
                param="model",
            )
    narrowed = _narrow(base, sel)
    if not narrowed:
        filters, param = _describe_filters(base, sel)
        raise InvalidRequest(
            f"No model matches {filters or 'the request'} for model '{sel.model}'.", param=param
        )
    return narrowed
