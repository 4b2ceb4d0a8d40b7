"""Which catalogue providers this process may use, and why the others are off.

A provider is disabled — never a crash — when the environment variable its ``api_key_env``
names is unset or empty, when a ``${VAR}`` in its ``base_url`` is unset or empty, or when it is
a paid tier and ``RELAY_MODE`` is ``free``. Enabled providers come back with their ``base_url``
expanded, ready to build clients from. Key values are read only to test for presence; they are
never logged, printed or stored here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from relay_core.catalogue.models import Catalogue, ProviderConfig, Tier
from relay_core.catalogue.source import CatalogueSource
from relay_core.catalogue.urls import expand, placeholders
from relay_core.settings import Mode

LOGGER_NAME = "relay.catalogue"


class Availability(NamedTuple):
    enabled: list[ProviderConfig]
    disabled: list[tuple[ProviderConfig, str]]  # (provider, reason)


def _env(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def key_present(provider: ProviderConfig, environ: Mapping[str, str] | None = None) -> bool:
    """Whether the provider's key variable is set and non-empty (False if it needs none)."""
    name = provider.api_key_env
    return name is not None and bool(_env(environ).get(name, "").strip())


def env_problems(provider: ProviderConfig, environ: Mapping[str, str] | None = None) -> list[str]:
    """What is missing from the environment for this provider, one phrase each."""
    env = _env(environ)
    problems: list[str] = []
    if provider.api_key_env is not None and not key_present(provider, env):
        problems.append(f"{provider.api_key_env} is not set")
    _, missing = expand(provider.base_url, env)
    problems += [f"{name} (used in base_url) is not set" for name in missing]
    return problems


def disabled_reason(
    provider: ProviderConfig, mode: Mode, environ: Mapping[str, str] | None = None
) -> str | None:
    """Why the provider cannot be used, or None when it can."""
    reasons: list[str] = []
    if provider.tier is Tier.paid and mode is Mode.free:
        reasons.append("paid tier, and RELAY_MODE is free")
    reasons += env_problems(provider, environ)
    return "; ".join(reasons) or None


def _resolved(provider: ProviderConfig, env: Mapping[str, str]) -> ProviderConfig:
    if not placeholders(provider.base_url):
        return provider
    url, _ = expand(provider.base_url, env)
    return provider.model_copy(update={"base_url": url})


def enabled_providers(
    catalogue: Catalogue, mode: Mode, environ: Mapping[str, str] | None = None
) -> Availability:
    """Split the catalogue into usable providers (``base_url`` expanded) and disabled ones.

    ``environ`` defaults to ``os.environ``; pass a mapping only to check what a given
    environment would enable (clients still read keys through ``ProviderConfig.api_key``).
    """
    env = _env(environ)
    enabled: list[ProviderConfig] = []
    disabled: list[tuple[ProviderConfig, str]] = []
    for provider in catalogue.providers:
        reason = disabled_reason(provider, mode, env)
        if reason is None:
            enabled.append(_resolved(provider, env))
        else:
            disabled.append((provider, reason))
    return Availability(enabled, disabled)


def describe_disabled(provider: ProviderConfig, reason: str) -> str:
    return f"{provider.name}: disabled — {reason}"


def log_startup(
    source: CatalogueSource,
    enabled: Sequence[ProviderConfig],
    disabled: Sequence[tuple[ProviderConfig, str]],
    logger: logging.Logger | None = None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """One line for the catalogue in use, then exactly one line per disabled provider.

    Call it with what :func:`enabled_providers` returned: ``log_startup(source, *availability)``.
    A provider off for a missing variable is a WARNING (someone probably meant to set it); one
    off only because of ``RELAY_MODE`` is INFO (that is what the mode is for).
    """
    log = logger or logging.getLogger(LOGGER_NAME)
    names = ", ".join(p.name for p in enabled) or "none"
    total = len(enabled) + len(disabled)
    log.info("catalogue: %s; %d of %d providers enabled: %s", source, len(enabled), total, names)
    for provider, reason in disabled:
        level = logging.WARNING if env_problems(provider, environ) else logging.INFO
        log.log(level, "%s", describe_disabled(provider, reason))
