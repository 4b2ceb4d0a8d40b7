"""The farm fixtures (simulator, Redis, Celery workers, API) for the streaming tests."""

from tests.integration.farm.conftest import make_farm

__all__ = ["make_farm"]
