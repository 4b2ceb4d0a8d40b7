"""Waiting for ``relay up``'s children to become ready, or to fail trying."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from relay_cli.supervise import Supervisor

START_TIMEOUT_S = 60.0


class StartFailed(Exception):
    """The farm cannot start; the message says why and what to do."""


def wait_for(
    what: str, check: Callable[[], bool], sup: Supervisor, timeout_s: float = START_TIMEOUT_S
) -> None:
    """Poll ``check`` until it holds; fail as soon as a child dies, or at the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        dead = sup.dead()
        if dead is not None:
            code = dead.proc.returncode
            raise StartFailed(f"{dead.name} exited (code {code}) while waiting for {what}")
        time.sleep(0.1)  # polling a condition, bounded by the deadline
    raise StartFailed(f"{what} did not become ready in {timeout_s:.0f} s")


def http_ok(url: str) -> Callable[[], bool]:
    """A check that ``GET url`` answers 200."""

    def check() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    return check
