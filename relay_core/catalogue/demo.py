"""The built-in catalogue, used when there is no ``relay.yaml``: five simulated providers that
between them speak all four API families, served by ``relay sim`` at ``sim_url``.

Model ids, context windows and output caps are those of the real models the providers are
named after; limits are generous (a few hundred RPM) so that demos move fast. No keys needed.
Two aliases are shared across providers so that routing has a choice: ``llama-3.1-8b`` (Groq
and Ollama) and ``small-fast`` (one small model on each provider).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from relay_core.catalogue.models import (
    ApiFamily,
    Catalogue,
    Limits,
    ModelConfig,
    ProviderConfig,
    Tier,
)

# Where each family's API lives under a simulated provider's prefix (see relay_sim).
_FAMILY_PATHS: Mapping[ApiFamily, str] = MappingProxyType(
    {"openai": "/v1", "gemini": "/v1beta", "anthropic": "", "ollama": ""}
)


def sim_base_url(sim_url: str, provider: str, api: ApiFamily) -> str:
    """The ``base_url`` of ``provider`` when the simulator at ``sim_url`` serves it."""
    return f"{sim_url.rstrip('/')}/{provider}{_FAMILY_PATHS[api]}"


def _provider(
    sim_url: str, name: str, api: ApiFamily, limits: Limits, models: list[ModelConfig]
) -> ProviderConfig:
    return ProviderConfig(
        name=name,
        api=api,
        base_url=sim_base_url(sim_url, name, api),
        tier=Tier.free,
        timeout_s=30.0,
        limits=limits,
        models=models,
    )


def _groq(sim_url: str) -> ProviderConfig:
    models = [
        ModelConfig(
            id="llama-3.1-8b-instant",
            aliases=["llama-3.1-8b", "small-fast"],
            scale="small",
            context_window=131072,
            max_output_tokens=8192,
        ),
        ModelConfig(
            id="llama-3.3-70b-versatile",
            aliases=["llama-3.3-70b"],
            type=["text", "coding"],
            scale="large",
            context_window=131072,
            max_output_tokens=32768,
            limits=Limits(rpm=120, tpm=12000),
        ),
        ModelConfig(
            id="openai/gpt-oss-20b",
            aliases=["gpt-oss-20b"],
            type=["text", "coding"],
            scale="medium",
            context_window=131072,
            max_output_tokens=65536,
        ),
    ]
    return _provider(sim_url, "sim-groq", "openai", Limits(rpm=300, tpm=60000, rpd=14400), models)


def _mistral(sim_url: str) -> ProviderConfig:
    models = [
        ModelConfig(
            id="mistral-small-latest",
            aliases=["mistral-small", "small-fast"],
            scale="small",
            context_window=131072,
        ),
        ModelConfig(
            id="codestral-latest",
            aliases=["codestral"],
            type=["coding"],
            scale="medium",
            context_window=262144,
        ),
        ModelConfig(
            id="mistral-embed",
            type=["embedding"],
            scale="small",
            context_window=8192,
            embeddings=True,
            dimensions=1024,
        ),
    ]
    return _provider(sim_url, "sim-mistral", "openai", Limits(rpm=300, tpm=500000), models)


def _gemini(sim_url: str) -> ProviderConfig:
    models = [
        ModelConfig(
            id="gemini-2.0-flash",
            aliases=["gemini-flash"],
            type=["text", "vision"],
            scale="medium",
            context_window=1048576,
            max_output_tokens=8192,
        ),
        ModelConfig(
            id="gemini-2.0-flash-lite",
            aliases=["gemini-flash-lite", "small-fast"],
            type=["text", "vision"],
            scale="small",
            context_window=1048576,
            max_output_tokens=8192,
        ),
        ModelConfig(
            id="gemini-2.5-pro",
            type=["text", "vision", "coding"],
            scale="large",
            context_window=1048576,
            max_output_tokens=65536,
            limits=Limits(rpm=60, rpd=1000),
        ),
    ]
    limits = Limits(rpm=600, tpm=1000000, rpd=10000, daily_reset="00:00 America/Los_Angeles")
    return _provider(sim_url, "sim-gemini", "gemini", limits, models)


def _claude(sim_url: str) -> ProviderConfig:
    models = [
        ModelConfig(
            id="claude-3-5-haiku-latest",
            aliases=["claude-haiku", "small-fast"],
            scale="small",
            context_window=200000,
            max_output_tokens=8192,
        ),
        ModelConfig(
            id="claude-sonnet-4-0",
            aliases=["claude-sonnet"],
            type=["text", "vision", "coding"],
            scale="large",
            context_window=200000,
            max_output_tokens=64000,
        ),
    ]
    return _provider(sim_url, "sim-claude", "anthropic", Limits(rpm=600, tpm=400000), models)


def _ollama(sim_url: str) -> ProviderConfig:
    models = [
        ModelConfig(
            id="llama3.1:8b",
            aliases=["llama-3.1-8b", "small-fast"],
            scale="small",
            context_window=131072,
        ),
        ModelConfig(
            id="qwen2.5-coder:7b",
            aliases=["qwen-coder"],
            type=["coding"],
            scale="small",
            context_window=32768,
        ),
    ]
    # A local server: no rate limits.
    return _provider(sim_url, "sim-ollama", "ollama", Limits(), models)


def demo_catalogue(sim_url: str) -> Catalogue:
    """The demo catalogue, its base URLs pointing at the simulator at ``sim_url``."""
    builders = (_groq, _mistral, _gemini, _claude, _ollama)
    return Catalogue(providers=[build(sim_url) for build in builders])
