"""A small catalogue for routing tests: four free providers and one paid, with aliases shared
across providers.

==========  ====  ======  ==================================================================
provider    tier  weight  models (id: aliases; type; scale)
==========  ====  ======  ==================================================================
groq        free  1       llama-3.1-8b: small-fast, llama; text; small
                          qwen-coder-32b: coder; text, coding; large
                          openai/gpt-oss-20b: -; text, reasoning; medium
gemini      free  1       gemini-flash: small-fast, smart; text, vision; medium
ollama      free  1       llama3.1:8b: llama; text; small
spare       free  1       llama-3.1-8b: llama; text; small
openai      paid  1       gpt-4o: smart; text, vision, coding; large
==========  ====  ======  ==================================================================
"""

from __future__ import annotations

from typing import Any

from relay_core.catalogue.models import ApiFamily, ModelConfig, ProviderConfig, Tier
from relay_core.routing.targets import Target


def provider(name: str, api: ApiFamily, models: list[ModelConfig], **fields: Any) -> ProviderConfig:
    return ProviderConfig(
        name=name, api=api, base_url=f"https://{name}.example.com/v1", models=models, **fields
    )


def model(model_id: str, *aliases: str, type: list[str], scale: str) -> ModelConfig:
    return ModelConfig.model_validate(
        {"id": model_id, "aliases": list(aliases), "type": type, "scale": scale}
    )


def catalogue() -> list[ProviderConfig]:
    return [
        provider(
            "groq",
            "openai",
            [
                model("llama-3.1-8b", "small-fast", "llama", type=["text"], scale="small"),
                model("qwen-coder-32b", "coder", type=["text", "coding"], scale="large"),
                model("openai/gpt-oss-20b", type=["text", "reasoning"], scale="medium"),
            ],
        ),
        provider(
            "gemini",
            "gemini",
            [model("gemini-flash", "small-fast", "smart", type=["text", "vision"], scale="medium")],
        ),
        provider("ollama", "ollama", [model("llama3.1:8b", "llama", type=["text"], scale="small")]),
        provider("spare", "openai", [model("llama-3.1-8b", "llama", type=["text"], scale="small")]),
        provider(
            "openai",
            "openai",
            [model("gpt-4o", "smart", type=["text", "vision", "coding"], scale="large")],
            tier=Tier.paid,
        ),
    ]


def keys(targets: list[Target]) -> list[str]:
    return [t.key for t in targets]
