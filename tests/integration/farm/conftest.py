"""Fixtures: a simulator and a real farm (Redis, Celery workers, API over HTTP) per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.support.farm import (
    Farm,
    make_settings,
    model,
    running_farm,
    sim_provider,
    simulated,
)

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


FarmFactory = Callable[..., Farm]


@pytest.fixture
def make_farm(tmp_path: Path) -> Iterator[FarmFactory]:
    """``make_farm(providers_fn, sim_overrides={}, workers=1, **settings)`` -> a running Farm.

    ``providers_fn(sim_url)`` returns the catalogue's provider entries; the simulator mirrors
    them (same names, families, models and limits) unless ``sim_overrides`` say otherwise.
    """
    with ExitStack() as stack:

        def make(
            providers_fn: Callable[[str], list[dict[str, Any]]] = four_providers,
            sim_overrides: dict[str, Any] | None = None,
            workers: int = 1,
            concurrency: int = 16,
            processes: int = 0,
            **settings_overrides: Any,
        ) -> Farm:
            sim_url, path = stack.enter_context(simulated(tmp_path, providers_fn, sim_overrides))
            settings = make_settings(path, **settings_overrides)
            farm_cm: AbstractContextManager[Farm] = running_farm(
                settings, sim_url, workers=workers, concurrency=concurrency, processes=processes
            )
            return stack.enter_context(farm_cm)

        yield make
