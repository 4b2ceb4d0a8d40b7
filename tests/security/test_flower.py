"""``relay flower`` beyond loopback wants a strong password, and failed logins are braked.

A Flower login can shut workers down and send tasks (docs/security.md). Real ``relay flower``
processes: refused ones must exit at once with a message that says what to do; a served one
locks a client address out after three failed logins (429, ``Retry-After``, the right password
not even tried), while another address still gets in. The brake's schedule itself is checked
with a controllable clock.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from relay_cli.login_brake import LoginBrake
from tests.support.farm import REDIS_URL
from tests.support.servers import free_port

pytestmark = pytest.mark.integration

START_TIMEOUT_S = 30
STRONG = "flower-" + uuid.uuid4().hex  # 39 characters


def flower_env(**relay: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    env.update(
        RELAY_DEMO="true",
        RELAY_REDIS_URL=REDIS_URL,
        RELAY_KEY_PREFIX=f"rt{uuid.uuid4().hex[:10]}",
        PYTHONUNBUFFERED="1",
    )
    env.update({f"RELAY_{k.upper()}": v for k, v in relay.items()})
    return env


def relay_flower(*args: str) -> list[str]:
    return [sys.executable, "-m", "relay_cli.main", "flower", *args]


@pytest.mark.parametrize(
    ("password", "why"),
    [
        (None, "a placeholder or default value"),  # the default, relay
        ("relay", "a placeholder or default value"),
        ("change-me-too", "a placeholder or default value"),  # deploy/env.example's
        ("CHANGE_ME_please_0123456789", "a placeholder or default value"),
        ("x", "shorter than 16 characters"),
        ("k3#Vq9!zLm2@", "shorter than 16 characters"),
    ],
)
def test_a_public_bind_with_a_weak_password_is_refused(password: str | None, why: str) -> None:
    relay = {} if password is None else {"flower_password": password}
    done = subprocess.run(
        relay_flower("--address", "0.0.0.0", "--port", str(free_port())),
        env=flower_env(**relay),
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "refusing to bind Flower to '0.0.0.0': RELAY_FLOWER_PASSWORD is" in done.stderr
    assert why in done.stderr
    assert "or bind 127.0.0.1" in done.stderr
    if password is not None and len(password) > 3:
        assert password not in done.stderr


def test_the_minimum_length_is_a_setting() -> None:
    done = subprocess.run(
        relay_flower("--address", "::", "--port", str(free_port())),
        env=flower_env(flower_password="k3#Vq9!zLm2@x7Yw" + "p" * 8, min_secret_chars="32"),
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "shorter than 32 characters (RELAY_MIN_SECRET_CHARS)" in done.stderr


@contextmanager
def flower(address: str, env: dict[str, str]) -> Iterator[int]:
    """A real ``relay flower`` on ``address``; yields its port once /healthcheck answers."""
    port = free_port()
    proc = subprocess.Popen(
        relay_flower("--address", address, "--port", str(port)),
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthcheck", timeout=1).is_success:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "relay flower did not start"
            time.sleep(0.1)  # polling a condition, bounded by the deadline
        yield port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=5)


def from_address(source: str) -> httpx.Client:
    """A client whose connections come from ``source`` (a loopback address of its own)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=10)


def test_failed_logins_lock_the_address_out_and_not_the_others() -> None:
    # Locked out for 10 minutes: the test never races the lockout's end.
    env = flower_env(flower_password=STRONG, flower_lockout_s="600", flower_lockout_max_s="600")
    with flower("0.0.0.0", env) as port, from_address("127.0.0.2") as guesser:
        url = f"http://127.0.0.1:{port}/api/workers"
        assert guesser.get(url).status_code == 401  # no credentials: Flower asks for them
        for n in range(3):
            assert guesser.get(url, auth=("relay", f"guess-{n}")).status_code == 401
        locked = guesser.get(url, auth=("relay", STRONG))  # the right one, not even tried
        assert locked.status_code == 429
        assert 590 <= int(locked.headers["Retry-After"]) <= 600
        assert "too many failed logins" in locked.text
        assert guesser.post(url, auth=("relay", STRONG)).status_code == 429  # any method
        assert guesser.get(f"http://127.0.0.1:{port}/healthcheck").status_code == 200
        with from_address("127.0.0.1") as owner:
            assert owner.get(url, auth=("relay", STRONG)).status_code == 200


def test_a_loopback_bind_keeps_the_default_password() -> None:
    with flower("127.0.0.1", flower_env()) as port, httpx.Client(timeout=10) as http:
        url = f"http://127.0.0.1:{port}/api/workers"
        assert http.get(url).status_code == 401
        assert http.get(url, auth=("relay", "relay")).status_code == 200


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_lockout_doubles_up_to_its_maximum_and_a_success_forgets() -> None:
    clock = Clock()
    brake = LoginBrake(lockout_s=5, lockout_max_s=30, clock=clock)
    waits = []
    for _ in range(6):
        brake.failed("a")
        waits.append(brake.locked_for("a"))
        clock.now += waits[-1]  # each guess as soon as it may be checked
    assert waits == [0, 0, 5, 10, 20, 30]
    assert brake.locked_for("b") == 0
    brake.succeeded("a")
    brake.failed("a")
    assert brake.locked_for("a") == 0  # typos are free again


def test_failures_are_forgotten_after_a_quiet_while_and_clients_are_bounded() -> None:
    clock = Clock()
    brake = LoginBrake(lockout_s=5, forget_s=900, max_clients=2, clock=clock)
    for _ in range(3):
        brake.failed("a")
    assert brake.locked_for("a") == 5
    clock.now += 901
    brake.failed("a")
    assert brake.locked_for("a") == 0  # the count started again
    for client in ("b", "c"):
        brake.failed(client)
    assert list(brake._clients) == ["b", "c"]  # the least recently failed went first
