from tests.unit.providers.support import connect

__all__ = ["connect"]
