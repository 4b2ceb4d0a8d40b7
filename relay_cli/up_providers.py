"""What ``relay up`` says about the catalogue's providers when it starts.

One line per provider: enabled, or disabled and why (``groq: disabled (GROQ_API_KEY is not
set)``). Each enabled provider gets a TCP connect to its ``base_url``'s host and port, every
probe in a daemon thread of its own, started before the farm's processes and bounded by
:data:`PROBE_TIMEOUT_S` (start-up never waits on it longer): ``ollama: enabled,
http://127.0.0.1:11434 unreachable (connection refused)``. When every enabled provider is
unreachable, every request would fail (503): the banner then says so loudly, and what to do.
"""

from __future__ import annotations

import errno
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from relay_core.catalogue.models import ProviderConfig

PROBE_TIMEOUT_S = 3.0
DEFAULT_PORTS = {"https": 443, "http": 80}


def origin(base_url: str) -> tuple[str, int, str]:
    """``(host, port, "scheme://host:port")`` of a provider's base URL."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    port = parts.port or DEFAULT_PORTS.get(parts.scheme, 80)
    shown = f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")
    return host, port, shown


def connect_error(host: str, port: int, timeout_s: float) -> str | None:
    """None when a TCP connection to ``host:port`` opens within ``timeout_s``, else why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except TimeoutError:
        return f"no answer in {timeout_s:.0f} s"
    except socket.gaierror:
        return "name not found"
    except OSError as exc:
        if exc.errno == errno.ECONNREFUSED:
            return "connection refused"
        return exc.strerror or type(exc).__name__


@dataclass
class Probe:
    """One enabled provider's connect probe, running in a daemon thread."""

    name: str
    address: str
    host: str
    port: int
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def run(self, timeout_s: float) -> None:
        try:
            self.error = connect_error(self.host, self.port, timeout_s)
        finally:
            self.done.set()

    @property
    def reachable(self) -> bool:
        return self.done.is_set() and self.error is None

    def line(self) -> str:
        if not self.done.is_set():
            return f"{self.name}: enabled, {self.address} unreachable (no answer yet)"
        if self.error is None:
            return f"{self.name}: enabled, {self.address} reachable"
        return f"{self.name}: enabled, {self.address} unreachable ({self.error})"


def start_probes(
    enabled: Sequence[ProviderConfig], timeout_s: float = PROBE_TIMEOUT_S
) -> list[Probe]:
    """A connect probe per enabled provider, each started in its own daemon thread (a name
    lookup that hangs can neither delay the others nor keep ``relay up`` from exiting)."""
    probes = []
    for provider in enabled:
        host, port, shown = origin(provider.base_url)
        probe = Probe(provider.name, shown, host, port)
        threading.Thread(
            target=probe.run, args=(timeout_s,), daemon=True, name=f"probe-{provider.name}"
        ).start()
        probes.append(probe)
    return probes


def wait_probes(probes: Sequence[Probe], timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Wait until every probe has an answer, ``timeout_s`` at most in all."""
    deadline = time.monotonic() + timeout_s
    for probe in probes:
        probe.done.wait(max(0.0, deadline - time.monotonic()))


def disabled_lines(disabled: Sequence[tuple[ProviderConfig, str]]) -> list[str]:
    return [f"{provider.name}: disabled ({reason})" for provider, reason in disabled]


def all_unreachable(probes: Sequence[Probe]) -> bool:
    return bool(probes) and not any(p.reachable for p in probes)


def unreachable_warning(probes: Sequence[Probe]) -> list[str]:
    """The loud lines for a farm none of whose enabled providers answers."""
    where = ", ".join(f"{p.name} at {p.address}" for p in probes)
    return [
        "!" * 78,
        f"WARNING: no enabled provider is reachable ({where}):",
        "every request will fail (503) until one is. Start it (e.g. `ollama serve`), export",
        "the key of a provider you have (GROQ_API_KEY, GEMINI_API_KEY, ...: README 'Configure'),",
        "or run `relay up --demo` for the simulated providers.",
        "!" * 78,
    ]
