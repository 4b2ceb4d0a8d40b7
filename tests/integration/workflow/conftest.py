"""Fixtures: a real farm (simulator, Redis, Celery workers, the API over HTTP) whose catalogue
holds the support workflow (tests/support/workflows.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.farm.conftest import four_providers
from tests.support.farm import FarmFactory, farm_factory
from tests.support.workflows import support_workflow

WORKFLOWS = {"workflows": [support_workflow()]}


@pytest.fixture
def make_farm(tmp_path: Path) -> Iterator[FarmFactory]:
    with farm_factory(tmp_path, four_providers) as make:

        def with_workflows(**kw: object) -> object:
            return make(catalogue_extra=WORKFLOWS, **kw)

        yield with_workflows  # type: ignore[misc]
