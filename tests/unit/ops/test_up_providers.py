"""What ``relay up`` says about providers at start: each one on or off and why, whether the
enabled ones answer a connect, and a loud warning when none does."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from relay_cli.up_providers import (
    all_unreachable,
    disabled_lines,
    origin,
    start_probes,
    unreachable_warning,
    wait_probes,
)
from relay_core.catalogue.loader import enabled_providers
from relay_core.catalogue.models import Catalogue, ProviderConfig
from relay_core.settings import Mode


@pytest.fixture
def listening() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once it is closed


def provider(name: str, base_url: str, key: str | None = None) -> ProviderConfig:
    return ProviderConfig.model_validate(
        {
            "name": name,
            "api": "openai",
            "base_url": base_url,
            "api_key_env": key,
            "models": [{"id": f"{name}-m"}],
        }
    )


def test_origin_is_scheme_host_and_port() -> None:
    assert origin("https://api.groq.com/openai/v1") == ("api.groq.com", 443, "https://api.groq.com")
    assert origin("http://127.0.0.1:11434") == ("127.0.0.1", 11434, "http://127.0.0.1:11434")


def test_each_provider_says_whether_it_is_on_and_why() -> None:
    catalogue = Catalogue(
        providers=[
            provider("groq", "https://api.groq.com/openai/v1", key="GROQ_API_KEY"),
            provider("ollama", "http://127.0.0.1:11434"),
        ]
    )
    enabled, disabled = enabled_providers(catalogue, Mode.free, environ={})
    assert [p.name for p in enabled] == ["ollama"]
    assert disabled_lines(disabled) == ["groq: disabled (GROQ_API_KEY is not set)"]


def test_probes_tell_reachable_from_unreachable(listening: int) -> None:
    down = closed_port()
    probes = start_probes(
        [
            provider("up", f"http://127.0.0.1:{listening}"),
            provider("down", f"http://127.0.0.1:{down}"),
        ]
    )
    wait_probes(probes)
    assert [p.line() for p in probes] == [
        f"up: enabled, http://127.0.0.1:{listening} reachable",
        f"down: enabled, http://127.0.0.1:{down} unreachable (connection refused)",
    ]
    assert not all_unreachable(probes)
    assert all_unreachable(probes[1:])


def test_every_enabled_provider_unreachable_is_said_loudly() -> None:
    down = closed_port()
    probes = start_probes([provider("ollama", f"http://127.0.0.1:{down}")])
    wait_probes(probes)
    warning = "\n".join(unreachable_warning(probes))
    assert "WARNING: no enabled provider is reachable" in warning
    assert f"ollama at http://127.0.0.1:{down}" in warning and "relay up --demo" in warning
    assert not all_unreachable([])  # nothing enabled: the simulator serves, nothing to warn of
