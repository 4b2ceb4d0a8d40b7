"""Base URLs in the catalogue: validation, and ``${VAR}`` expansion from the environment.

A ``base_url`` may name environment variables as ``${NAME}`` (and only that form), e.g.
Cloudflare's ``https://api.cloudflare.com/client/v4/accounts/${CLOUDFLARE_ACCOUNT_ID}/ai/v1``.
Expansion happens when providers are enabled (:mod:`relay_core.catalogue.availability`), not at
load time, so a file validates the same whatever the environment; a variable that is unset or
empty disables the provider, exactly like a missing API key. Nowhere else in the file is
expanded: keys never live in the catalogue at all (``api_key_env`` names the variable).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from pydantic_core import PydanticCustomError

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_EXAMPLE = "https://api.example.com/v1"


def placeholders(template: str) -> list[str]:
    """The variable names a base URL refers to, in order, without repeats."""
    return list(dict.fromkeys(_PLACEHOLDER.findall(template)))


def expand(template: str, environ: Mapping[str, str]) -> tuple[str, list[str]]:
    """``template`` with every ``${NAME}`` replaced, and the names that were unset or empty."""
    missing = [name for name in placeholders(template) if not environ.get(name, "").strip()]
    expanded = _PLACEHOLDER.sub(lambda m: environ.get(m.group(1), "").strip(), template)
    return expanded, missing


def _invalid(what: str, fix: str) -> PydanticCustomError:
    return PydanticCustomError("invalid_base_url", what, {"fix": fix})


def check_base_url(value: str) -> str:
    """Validate a base URL (before expansion) and return it without a trailing ``/``.

    Raises :class:`PydanticCustomError` (type ``invalid_base_url``, ``ctx['fix']`` says what to
    do) so that pydantic reports it at the field. Never echoes the value: a URL with a
    credential in it must not end up in logs.
    """
    if any(ch.isspace() for ch in value):
        raise _invalid("must not contain spaces", "remove the spaces from the URL")
    if "$" in _PLACEHOLDER.sub("", value):
        raise _invalid(
            "has a '$' that is not a ${NAME} placeholder",
            "write environment variables as ${NAME} (letters, digits and '_'), e.g. "
            "https://api.cloudflare.com/client/v4/accounts/${CLOUDFLARE_ACCOUNT_ID}/ai/v1",
        )
    parts = urlsplit(_PLACEHOLDER.sub("x", value))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _invalid("is not an http(s) URL with a host", f"use a URL such as {_EXAMPLE}")
    if parts.username is not None or parts.password is not None:
        raise _invalid(
            "must not carry a user name or password",
            "remove the credentials from the URL and name the key's variable in api_key_env",
        )
    if parts.query or parts.fragment:
        raise _invalid(
            "must not have a query string or fragment",
            "remove everything from '?' or '#'; keys go in api_key_env, never in the URL",
        )
    try:
        _ = parts.port
    except ValueError:
        raise _invalid(
            "has an invalid port", f"use a port between 1 and 65535, e.g. {_EXAMPLE}"
        ) from None
    return value.rstrip("/")
