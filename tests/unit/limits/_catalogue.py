"""Catalogue entries for tests that go through ``Limiter.plan``."""

from __future__ import annotations

from relay_core.catalogue.models import Limits, ModelConfig, ProviderConfig


def provider(limits: Limits, *models: ModelConfig, timeout_s: float = 60.0) -> ProviderConfig:
    return ProviderConfig(
        name="prov",
        api="openai",
        base_url="http://127.0.0.1:8900/v1",
        limits=limits,
        models=list(models) or [ModelConfig(id="m1")],
        timeout_s=timeout_s,
    )


def model(model_id: str = "m1", limits: Limits | None = None) -> ModelConfig:
    return ModelConfig(id=model_id, limits=limits)
