"""Fixtures: a simulator and a real farm (Redis, Celery workers, API over HTTP) per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.farm import FarmFactory, farm_factory, model, sim_provider


def two_providers(sim_url: str) -> list[dict[str, Any]]:
    """``prosy`` (listed first: it wins ties) and ``tidy``, both serving ``chat``."""
    return [
        sim_provider(name, "openai", sim_url, [model(f"{name}-m", aliases=["chat"])])
        for name in ("prosy", "tidy")
    ]


@pytest.fixture
def make_farm(tmp_path: Path) -> Iterator[FarmFactory]:
    with farm_factory(tmp_path, two_providers) as make:
        yield make
