"""The provider catalogue: providers, their models and their limits, as typed data.

The field names are the users' file format (``relay.yaml``); keep them stable.
"""

from __future__ import annotations

import os
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from relay_core.catalogue.terms import CREDENTIAL_HEADERS, Tier
from relay_core.catalogue.urls import check_base_url
from relay_core.policy.models import Policy
from relay_core.workflow.models import Workflow

__all__ = [  # Tier and CREDENTIAL_HEADERS live in terms.py (the policies read them too)
    "CREDENTIAL_HEADERS",
    "DAILY_RESET_ZONES",
    "Catalogue",
    "Limits",
    "ModelConfig",
    "ProviderConfig",
    "Tier",
]

ApiFamily = Literal["openai", "gemini", "anthropic", "ollama"]
# Families without an embeddings endpoint (Anthropic points to Voyage AI instead).
NO_EMBEDDINGS: frozenset[str] = frozenset({"anthropic"})
# How a provider counts a call against its TPM / TPD: ``reserve``, the prompt plus the whole
# ``max_tokens`` at admission (Groq, Cerebras); ``usage``, the tokens the call really used.
TpmCounting = Literal["reserve", "usage"]
Scale = Literal["small", "medium", "large"]


# Time zones ``daily_reset`` understands (the providers reset at UTC or Pacific midnight).
DAILY_RESET_ZONES = ("UTC", "America/Los_Angeles", "US/Pacific", "Pacific")
# The name of an environment variable (never the key itself).
ENV_VAR_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"

DailyReset = Annotated[
    str,
    Field(
        pattern=rf"^([01]\d|2[0-3]):[0-5]\d ({'|'.join(DAILY_RESET_ZONES)})$",
        description='When daily counters reset, "HH:MM UTC" or "HH:MM America/Los_Angeles"',
    ),
]


class Limits(BaseModel):
    """Published limits. ``None`` means the provider sets none (or it is not known)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rpm: PositiveInt | None = None
    rpd: PositiveInt | None = None
    tpm: PositiveInt | None = None
    tpd: PositiveInt | None = None
    concurrency: PositiveInt | None = None
    # Learn the concurrency limit (AIMD, relay_core/limits/adaptive.py) where it is unknown or
    # shared: OpenRouter's :free models, a local Ollama. ``concurrency``, if set, caps it.
    adaptive_concurrency: bool = False
    # Requests a bucket may take at once. Default: one second's worth of ``rpm`` (smooth pacing
    # never trips a provider that counts per second or over a sliding minute).
    burst: PositiveInt | None = None
    daily_reset: DailyReset = "00:00 UTC"


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)
    type: list[str] = Field(default_factory=lambda: ["text"])
    scale: Scale = "medium"
    context_window: PositiveInt = 8192
    max_output_tokens: PositiveInt | None = None
    limits: Limits | None = None
    # An embeddings model (``POST /v1/embeddings``, never chat): its vectors' length must be
    # declared, and embeddings fail over only between models of the same ``dimensions``.
    # ``shortens``: it returns fewer dimensions when a request asks (``dimensions``:
    # OpenAI's text-embedding-3, Gemini's outputDimensionality).
    embeddings: bool = False
    dimensions: PositiveInt | None = None
    shortens: bool = False

    @model_validator(mode="after")
    def _embeddings_declare_dimensions(self) -> ModelConfig:
        if self.embeddings and self.dimensions is None:
            raise PydanticCustomError(
                "embedding_dimensions",
                "embeddings model '{model}' does not declare its dimensions",
                {"model": self.id, "fix": "add dimensions: N (the length of its vectors)"},
            )
        if not self.embeddings and (self.dimensions is not None or self.shortens):
            raise PydanticCustomError(
                "embedding_only",
                "model '{model}' sets dimensions or shortens but is not an embeddings model",
                {"model": self.id, "fix": "add embeddings: true, or remove them"},
            )
        return self


class ProviderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    api: ApiFamily
    # May name environment variables as ${NAME}: see relay_core.catalogue.urls.
    base_url: str = Field(pattern=r"^https?://")
    api_key_env: Annotated[str, Field(pattern=ENV_VAR_NAME)] | None = None
    tier: Tier = Tier.free
    weight: PositiveFloat = 1.0
    timeout_s: PositiveFloat = 60.0
    limits: Limits = Field(default_factory=Limits)
    # See TpmCounting; decides what Relay reserves against the token limits (docs/limits.md).
    tpm_counting: TpmCounting = "reserve"
    models: list[ModelConfig] = Field(min_length=1)
    # Extra headers sent with every request (e.g. OpenRouter's HTTP-Referer). Not secrets.
    headers: dict[str, str] = Field(default_factory=dict)
    # OpenAI-compatible servers that implement less than OpenAI does (llama.cpp's server):
    # ``max_tokens_only``: it reads ``max_tokens`` and ignores ``max_completion_tokens``, so
    # Relay sends the client's ``max_completion_tokens`` as ``max_tokens``;
    # ``single_choice``: it answers one choice whatever ``n`` asks, so Relay refuses ``n > 1``.
    max_tokens_only: bool = False
    single_choice: bool = False

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        return check_base_url(value)

    @field_validator("headers")
    @classmethod
    def _no_credential_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if name.lower() in CREDENTIAL_HEADERS:
                raise PydanticCustomError(
                    "credential_header",
                    "header {header} would put a credential in the catalogue",
                    {
                        "header": name,
                        "fix": "remove it; Relay sends the key named by api_key_env itself",
                    },
                )
        return value

    @model_validator(mode="after")
    def _openai_flags_on_openai(self) -> ProviderConfig:
        if self.api != "openai":
            for flag in ("max_tokens_only", "single_choice"):
                if getattr(self, flag):
                    raise PydanticCustomError(
                        "openai_only",
                        "{flag} applies to api: openai providers only",
                        {
                            "flag": flag,
                            "fix": f"remove it: Relay maps the {self.api} API's parameters itself",
                        },
                    )
        return self

    @model_validator(mode="after")
    def _embeddings_where_served(self) -> ProviderConfig:
        if self.api in NO_EMBEDDINGS and any(m.embeddings for m in self.models):
            raise PydanticCustomError(
                "no_embeddings_api",
                "the {api} API serves no embeddings",
                {"api": self.api, "fix": "remove embeddings: true from its models"},
            )
        return self

    @model_validator(mode="after")
    def _unique_model_ids(self) -> ProviderConfig:
        seen: set[str] = set()
        for m in self.models:
            for name in (m.id, *m.aliases):
                if name in seen:
                    raise PydanticCustomError(
                        "duplicate_model",
                        "model id or alias '{name}' appears twice",
                        {"name": name, "fix": "give each model id and alias once per provider"},
                    )
                seen.add(name)
        return self

    def api_key(self) -> str | None:
        """The key from the environment variable the catalogue names (never stored here)."""
        if self.api_key_env is None:
            return None
        return os.environ.get(self.api_key_env) or None

    def needs_key(self) -> bool:
        return self.api_key_env is not None

    def model(self, model_id: str) -> ModelConfig | None:
        for m in self.models:
            if model_id == m.id or model_id in m.aliases:
                return m
        return None


class Catalogue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # The file format's version; bumped only when a change would misread old files.
    version: Literal[1] = 1
    providers: list[ProviderConfig] = Field(min_length=1)
    # Routing policies, tried in this order (relay_core/policy, docs/routing.md).
    policies: list[Policy] = Field(default_factory=list)
    # Workflows, run by name: POST /v1/workflows/{name}/runs (docs/workflows.md).
    workflows: list[Workflow] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_provider_names(self) -> Catalogue:
        names = [p.name for p in self.providers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise PydanticCustomError(
                "duplicate_provider",
                "provider name '{name}' appears twice",
                {"name": dupes[0], "fix": "give each provider a unique name"},
            )
        return self

    @model_validator(mode="after")
    def _policies_name_known_targets(self) -> Catalogue:
        problem = policy_problem(self)
        if problem is not None:
            raise PydanticCustomError("policy_reference", problem, {"fix": "see docs/routing.md"})
        return self

    @model_validator(mode="after")
    def _unique_workflow_names(self) -> Catalogue:
        names = [w.name for w in self.workflows]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise PydanticCustomError(
                "duplicate_workflow",
                "workflow name '{name}' appears twice",
                {"name": dupes[0], "fix": "give each workflow a unique name"},
            )
        return self

    def provider(self, name: str) -> ProviderConfig | None:
        return next((p for p in self.providers if p.name == name), None)

    def workflow(self, name: str) -> Workflow | None:
        return next((w for w in self.workflows if w.name == name), None)


def unknown_target(catalogue_providers: dict[str, set[str]], ref: str) -> str | None:
    """Why ``provider[/model]`` names nothing in the catalogue (None when it names a target).
    ``catalogue_providers`` maps each provider name to its model ids and aliases."""
    name, _, model = ref.partition("/")
    if name not in catalogue_providers:
        return f"no provider {name!r} in the catalogue"
    if model and model not in catalogue_providers[name]:
        return f"provider {name!r} has no model {model!r}"
    return None


def policy_problem(catalogue: Catalogue) -> str | None:
    """The first policy that names an unknown target or repeats a name (the raw checks of
    relay_core/catalogue/checks.py report each one, with its line)."""
    known = {p.name: {n for m in p.models for n in (m.id, *m.aliases)} for p in catalogue.providers}
    seen: set[str] = set()
    for policy in catalogue.policies:
        if policy.name in seen:
            return f"policy name {policy.name!r} appears twice"
        seen.add(policy.name)
        for action, _, ref in policy.target_refs():
            why = unknown_target(known, ref)
            if why is not None:
                return f"policy {policy.name!r} {action}: {why}"
    return None
