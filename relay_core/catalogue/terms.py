"""Catalogue words other packages use without the catalogue itself (the routing policies)."""

from __future__ import annotations

from enum import StrEnum


class Tier(StrEnum):
    free = "free"
    paid = "paid"


# Header names that carry credentials: Relay sends the key from ``api_key_env`` itself.
CREDENTIAL_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key"}
)
