"""Routing policies as typed data: the ``policies:`` list of the catalogue YAML.

A policy is a ``match`` (every condition given must hold; a list holds when any entry does)
and one or more actions. Nothing in it is code: names, globs over the requested model, enum
values and numbers only (docs/routing.md, "Policies").
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from relay_core.catalogue.terms import CREDENTIAL_HEADERS, Tier
from relay_core.profile.models import Contract, Priority, TaskFamily
from relay_core.settings import Mode

NeedName = Literal["tools", "json_output", "vision", "long_context"]
# An owner id (``GET /v1/usage`` shows a key's), or ``anonymous`` when no keys are set.
OwnerRef = Annotated[str, Field(pattern=r"^(k[0-9a-f]{15}|anonymous)$")]
# ``provider`` or ``provider/model`` (the provider's own model id).
TargetRef = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*(/.+)?$")]
HEADER_NAME = r"^[a-z0-9][a-z0-9-]*$"
# Headers a policy may never read: they carry credentials or session state.
UNREADABLE_HEADERS = CREDENTIAL_HEADERS | {"cookie", "set-cookie"}


class TargetSet(BaseModel):
    """Targets named (``provider`` or ``provider/model``), plus every target of ``tier``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    providers: list[TargetRef] = Field(default_factory=list)
    tier: Tier | None = None

    @model_validator(mode="after")
    def _names_something(self) -> TargetSet:
        if not self.providers and self.tier is None:
            raise PydanticCustomError(
                "empty_target_set",
                "names no target",
                {"fix": "give providers: [name, ...] or tier: free|paid"},
            )
        return self

    def holds(self, provider: str, target: str, tier: Tier) -> bool:
        """Whether the target ``provider/model`` (``target``) of ``tier`` is in the set."""
        names = self.providers  # a few entries: a list is as quick as a set here
        return tier is self.tier or provider in names or target in names


class Caps(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: PositiveInt | None = None


def _as_list(value: object) -> object:
    return [value] if isinstance(value, str | bool) else value


class PolicyMatch(BaseModel):
    """When a policy applies. Left empty, always."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The requested ``model`` as sent: exact names or shell globs (``gpt-*``).
    model: list[str] | None = None
    family: list[TaskFamily] | None = None
    contract: list[Contract] | None = None
    needs: list[NeedName] | None = None  # every one listed must be present
    deterministic: bool | None = None
    priority: list[Priority] | None = None
    key: list[OwnerRef] | None = None  # owner ids, never a key
    header: dict[Annotated[str, Field(pattern=HEADER_NAME)], list[str]] | None = None

    @field_validator("model", "family", "contract", "needs", "priority", "key", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return _as_list(value)

    @field_validator("header", mode="before")
    @classmethod
    def _header_values(cls, value: object) -> object:
        if isinstance(value, dict):
            return {str(k).lower(): _as_list(v) for k, v in value.items()}
        return value

    @field_validator("header")
    @classmethod
    def _no_credentials(cls, value: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
        for name in value or {}:
            if name in UNREADABLE_HEADERS:
                raise PydanticCustomError(
                    "credential_header",
                    "a policy may not read header {header}",
                    {"header": name, "fix": "match on key: <owner id> instead of a credential"},
                )
        return value


ACTIONS = ("prefer", "exclude", "require", "cap", "mode", "hedge", "cache")


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    match: PolicyMatch = Field(default_factory=PolicyMatch)
    prefer: TargetSet | None = None  # ranked first (in the order of the policies that fired)
    exclude: TargetSet | None = None  # never tried
    require: TargetSet | None = None  # only these are tried
    cap: Caps | None = None  # lower temperature / max_tokens to at most these
    mode: Mode | None = None  # the tier mode for the request
    hedge: bool | None = None  # hedged requests (read by the hedging code)
    cache: bool | None = None  # the exact-answer cache (read by the cache)

    @model_validator(mode="after")
    def _does_something(self) -> Policy:
        if all(getattr(self, name) is None for name in ACTIONS):
            raise PydanticCustomError(
                "policy_without_action",
                "has no action",
                {"fix": f"give at least one of {', '.join(ACTIONS)}"},
            )
        return self

    def target_refs(self) -> list[tuple[str, int, str]]:
        """Every ``providers`` entry of its actions: (action, index, ``provider[/model]``)."""
        out: list[tuple[str, int, str]] = []
        for action in ("prefer", "exclude", "require"):
            chosen: TargetSet | None = getattr(self, action)
            if chosen is not None:
                out += [(action, i, ref) for i, ref in enumerate(chosen.providers)]
        return out
