"""Fixtures: a simulator and a real farm (Redis, Celery workers, API over HTTP) per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.farm import FarmFactory, farm_factory, model, sim_provider

# Four providers, one per API family, each serving the same model alias "chat".
FAMILIES = [
    ("p-openai", "openai"),
    ("p-gemini", "gemini"),
    ("p-claude", "anthropic"),
    ("p-ollama", "ollama"),
]


def four_providers(sim_url: str, **limits: Any) -> list[dict[str, Any]]:
    return [
        sim_provider(name, api, sim_url, [model(f"{name}-m", aliases=["chat"])], **limits)
        for name, api in FAMILIES
    ]


@pytest.fixture
def make_farm(tmp_path: Path) -> Iterator[FarmFactory]:
    """``make_farm(providers_fn, sim_overrides={}, workers=1, **settings)`` -> a running Farm.

    ``providers_fn(sim_url)`` returns the catalogue's provider entries; the simulator mirrors
    them (same names, families, models and limits) unless ``sim_overrides`` say otherwise.
    """
    with farm_factory(tmp_path, four_providers) as make:
        yield make
