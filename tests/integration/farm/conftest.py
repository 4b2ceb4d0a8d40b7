"""Fixtures: a simulator and a real farm (Redis, Celery workers, API over HTTP) per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import Any

import pytest

from relay_core.catalogue.loader import load_catalogue
from relay_core.simulator.config import SimConfig
from relay_core.simulator.server import SimServer
from tests.support.farm import (
    Farm,
    make_settings,
    model,
    running_farm,
    sim_provider,
    write_catalogue,
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
            draft = write_catalogue(tmp_path / "draft.yaml", providers_fn("http://sim.invalid"))
            sim_config = SimConfig.from_catalogue(load_catalogue(draft), **(sim_overrides or {}))
            sim = stack.enter_context(SimServer(sim_config))
            path = write_catalogue(tmp_path / "relay.yaml", providers_fn(sim.url))
            settings = make_settings(path, **settings_overrides)
            farm_cm: AbstractContextManager[Farm] = running_farm(
                settings, sim.url, workers=workers, concurrency=concurrency, processes=processes
            )
            return stack.enter_context(farm_cm)

        yield make
