"""``relay api`` refuses to listen beyond loopback without gateway keys.

Real ``relay api`` processes: refused ones must exit at once with a message that says what to
do; allowed ones must serve ``/health`` and are stopped (SIGTERM) before the test ends.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

import relay_cli.api
from relay_cli.exposure import is_loopback
from relay_cli.main import main
from tests.support.farm import REDIS_URL

pytestmark = pytest.mark.integration

START_TIMEOUT_S = 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def api_env(**relay: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    env.update(
        RELAY_DEMO="true",
        RELAY_REDIS_URL=REDIS_URL,
        RELAY_KEY_PREFIX=f"rt{uuid.uuid4().hex[:10]}",
        PYTHONUNBUFFERED="1",
    )
    env.update({f"RELAY_{k.upper()}": v for k, v in relay.items()})
    return env


def relay_api(*args: str) -> list[str]:
    return [sys.executable, "-m", "relay_cli.main", "api", *args]


@pytest.mark.parametrize(
    ("args", "relay_env"),
    [
        (["--host", "0.0.0.0"], {}),
        (["--host", "::"], {}),
        (["--host", "relay.example.internal"], {}),
        ([], {"host": "0.0.0.0"}),  # RELAY_HOST, no flag
        (["--host", "0.0.0.0"], {"api_keys": " , "}),  # a list of nothing is no key
    ],
)
def test_public_bind_without_gateway_keys_is_refused(
    args: list[str],
    relay_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name in [k for k in os.environ if k.startswith("RELAY_")]:
        monkeypatch.delenv(name)
    for name, value in api_env(**relay_env).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(relay_cli.api, "setup_logging", lambda *a, **k: None)  # keep caplog's
    monkeypatch.setattr("uvicorn.run", fail_if_served)
    assert main(["api", *args]) == 2
    assert "refusing to bind" in caplog.text
    assert "RELAY_API_KEYS" in caplog.text


def fail_if_served(*_: object, **__: object) -> None:
    raise AssertionError("relay api started serving")


def test_refusal_is_the_process_exit_code() -> None:
    done = subprocess.run(
        relay_api("--host", "0.0.0.0", "--port", str(free_port())),
        env=api_env(),
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "refusing to bind to 0.0.0.0 without gateway keys: set RELAY_API_KEYS" in done.stderr


@contextmanager
def serving(argv: list[str], env: dict[str, str], port: int) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "relay api did not start"
            time.sleep(0.1)  # polling a condition, bounded by the deadline
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=5)


def test_public_bind_with_gateway_keys_serves_and_asks_for_them() -> None:
    port = free_port()
    env = api_env(api_keys="sk-bind-test-0123456789", shutdown_grace_s="1")
    argv = relay_api("--host", "0.0.0.0", "--port", str(port))
    with serving(argv, env, port):
        url = f"http://127.0.0.1:{port}/v1/models"
        assert httpx.get(url, timeout=5).status_code == 401
        auth = {"Authorization": "Bearer sk-bind-test-0123456789"}
        assert httpx.get(url, headers=auth, timeout=5).status_code == 200


def test_loopback_without_keys_serves() -> None:
    port = free_port()
    argv = relay_api("--host", "127.0.0.1", "--port", str(port))
    with serving(argv, api_env(shutdown_grace_s="1"), port):
        assert httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=5).status_code == 200


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("localhost.evil.example", False),
        ("", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
