"""A worker's ``--metrics-port`` listens on loopback unless ``--metrics-address`` says otherwise.

Real ``relay worker`` processes: the port answers on 127.0.0.1, the socket listening on it is
bound to 127.0.0.1 (not 0.0.0.0: ``/proc/net/tcp`` says), and a non-loopback address of this
machine, if it has one, gets no answer. ``--metrics-address`` (or
``RELAY_WORKER_METRICS_ADDRESS``) opens it further, for a Prometheus elsewhere.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.farm import REDIS_URL
from tests.support.servers import free_port

pytestmark = pytest.mark.integration

START_TIMEOUT_S = 60


def worker_env(**relay: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    env.update(
        RELAY_DEMO="true",
        RELAY_REDIS_URL=REDIS_URL,
        RELAY_KEY_PREFIX=f"rt{uuid.uuid4().hex[:10]}",
        RELAY_SHUTDOWN_GRACE_S="1",
        PYTHONUNBUFFERED="1",
    )
    env.update({f"RELAY_{k.upper()}": v for k, v in relay.items()})
    return env


@contextmanager
def worker(port: int, *args: str, **relay: str) -> Iterator[None]:
    """A real ``relay worker`` with a metrics port; yields it once the port answers."""
    argv = [sys.executable, "-m", "relay_cli.main", "worker", "--concurrency", "2"]
    argv += ["--loglevel", "WARNING", "--metrics-port", str(port), *args]
    proc = subprocess.Popen(argv, env=worker_env(**relay))
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert proc.poll() is None, f"relay worker exited with {proc.returncode}"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).is_success:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the metrics port did not answer"
            time.sleep(0.1)  # polling a condition, bounded by the deadline
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def listening_addresses(port: int) -> set[str]:
    """The addresses TCP sockets listen on at ``port`` (IPv4: ``/proc/net/tcp``, Linux)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
            found.add(socket.inet_ntoa(int(address, 16).to_bytes(4, "little")))
    return found


def other_local_address() -> str | None:
    """This machine's IPv4 address towards the outside (None when it has no such route)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: a UDP connect sends nothing
        except OSError:
            return None
        address: str = s.getsockname()[0]
    return None if address.startswith("127.") else address


def test_the_metrics_port_binds_loopback_by_default() -> None:
    port = free_port()
    with worker(port):
        assert listening_addresses(port) == {"127.0.0.1"}
        other = other_local_address()
        if other is not None:
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"http://{other}:{port}/metrics", timeout=5)


def test_the_metrics_address_opens_it_further() -> None:
    port = free_port()
    with worker(port, "--metrics-address", "0.0.0.0"):
        assert listening_addresses(port) == {"0.0.0.0"}


def test_the_metrics_address_is_a_setting_too() -> None:
    port = free_port()
    with worker(port, worker_metrics_address="0.0.0.0"):
        assert listening_addresses(port) == {"0.0.0.0"}
