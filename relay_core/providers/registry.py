"""Find the client for a catalogue entry, and build them all once per process.

``FAMILIES`` maps each catalogue ``api`` value to the class that speaks it. A provider that
speaks a known family is a catalogue entry, not code; a new family is one new module here plus
one row in ``FAMILIES``.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from types import MappingProxyType

import httpx

from relay_core.catalogue.models import Catalogue, ProviderConfig
from relay_core.providers._http import CONNECT_TIMEOUT_S
from relay_core.providers._transport import ShardedTransport
from relay_core.providers.anthropic import AnthropicProvider
from relay_core.providers.base import Provider, ProviderFactory
from relay_core.providers.gemini import GeminiProvider
from relay_core.providers.ollama import OllamaProvider
from relay_core.providers.openai import OpenAIProvider

FAMILIES: Mapping[str, ProviderFactory] = MappingProxyType(
    {
        "openai": OpenAIProvider,
        "gemini": GeminiProvider,
        "anthropic": AnthropicProvider,
        "ollama": OllamaProvider,
    }
)

MAX_CONNECTIONS = 512
MAX_KEEPALIVE_CONNECTIONS = 128
DEFAULT_READ_TIMEOUT_S = 60.0


def build_provider(
    config: ProviderConfig, http: httpx.AsyncClient, api_key: str | None
) -> Provider:
    """The client for one catalogue entry (``KeyError`` for an ``api`` with no family)."""
    return FAMILIES[config.api](config, http, api_key)


def build_providers(catalogue: Catalogue, http: httpx.AsyncClient) -> dict[str, Provider]:
    """A client per catalogue provider, keyed by name, all sharing ``http``.

    Each key is read from its environment variable (``ProviderConfig.api_key()``). A provider
    that needs a key which is not set is left out; the caller compares the names and logs it.
    """
    providers: dict[str, Provider] = {}
    for config in catalogue.providers:
        key = config.api_key()
        if config.needs_key() and key is None:
            continue
        providers[config.name] = build_provider(config, http, key)
    return providers


def make_http_client(
    *,
    max_connections: int = MAX_CONNECTIONS,
    max_keepalive_connections: int = MAX_KEEPALIVE_CONNECTIONS,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
    read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
    ssl_context: ssl.SSLContext | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """The pooled client a process builds once at start-up and passes to every provider.

    Each provider call also passes its own ``timeout=`` (the catalogue's ``timeout_s``); the
    timeouts here only apply to calls that do not. Pass one ``ssl_context`` to several clients
    to avoid building one per client (~75 ms of CPU each). The connections are pooled in
    shards (:class:`~relay_core.providers._transport.ShardedTransport`) unless ``transport``
    is given.
    """
    verify: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
    if transport is None:
        transport = ShardedTransport.pools(
            max_connections=max_connections,
            max_keepalive_connections=max_keepalive_connections,
            verify=verify,
        )
    return httpx.AsyncClient(
        timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s),
        verify=verify,
        transport=transport,
        follow_redirects=False,
    )
