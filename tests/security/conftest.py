"""Fixtures for the security suite: a real farm (simulator, Redis, Celery workers, API)."""

from tests.integration.batch.conftest import batch_farm
from tests.integration.farm.conftest import make_farm

__all__ = ["batch_farm", "make_farm"]
