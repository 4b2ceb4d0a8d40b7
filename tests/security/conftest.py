"""Fixtures for the security suite: a real farm (simulator, Redis, Celery workers, API)."""

from tests.integration.farm.conftest import make_farm

__all__ = ["make_farm"]
