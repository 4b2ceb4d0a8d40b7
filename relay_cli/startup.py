"""Checks ``relay api`` and ``relay worker`` make before they start anything."""

from __future__ import annotations

from relay_core.settings import Settings


def catalogue_refusal(settings: Settings) -> str | None:
    """Why the process must not start with this catalogue (every problem, one a line, the
    routing policies' included), or None when it loads."""
    from relay_core.catalogue.loader import CatalogueError, resolve_catalogue

    try:
        resolve_catalogue(settings)
    except CatalogueError as exc:
        return "refusing to start: the catalogue is not valid:\n" + "\n".join(exc.problems)
    return None
