"""What a service may listen with beyond loopback: secrets that are neither placeholders nor
short (docs/security.md, "Defaults that let people in").

``relay api`` and ``relay flower`` ask :func:`weak_secret` about their gateway keys and Flower
password when they bind anything but loopback, and refuse to start when it names a problem.
"""

from __future__ import annotations

import ipaddress
import re

# Normalized (lowercase, letters and digits only), these mark a value copied from an example:
# deploy/env.example's ``change-me-to-a-long-random-key`` and ``change-me-too``, and the usual.
_PLACEHOLDER_MARKS = ("changeme", "replaceme", "placeholder", "yourkey", "yourpassword")
# Whole values nobody should listen with (the shipped defaults among them).
_DEFAULTS = frozenset({"relay", "admin", "password", "secret", "flower", "test", "example"})

MAKE_ONE = "python -c 'import secrets; print(secrets.token_urlsafe(32))' makes one"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def weak_secret(value: str, min_chars: int) -> str | None:
    """Why ``value`` must not guard a public bind (never quoting it), or None when it may."""
    normalized = re.sub(r"[^a-z0-9]", "", value.lower())
    if normalized in _DEFAULTS or any(mark in normalized for mark in _PLACEHOLDER_MARKS):
        return "a placeholder or default value"
    if len(value) < min_chars:
        return f"shorter than {min_chars} characters (RELAY_MIN_SECRET_CHARS)"
    return None
