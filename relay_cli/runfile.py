"""``.relay/up.json``: where a running ``relay up`` says what it started; ``up.lock``: its lock.

Other commands (``relay status``, ``relay check``, ``relay batch``) read ``up.json`` to find the
farm when no ``RELAY_REDIS_URL`` is set (:mod:`relay_cli.farms`, which also finds a ``relay up``
started in another folder); a second ``relay up`` finds the lock held and refuses. The lock is
an ``flock``, so a crashed ``relay up`` never leaves it behind; ``up.json`` then lists the
children it left running, which the next ``relay up`` stops.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from pydantic import BaseModel, ValidationError

from relay_core.settings import Settings


class ChildInfo(BaseModel):
    name: str
    pid: int
    cmd: str  # the start of its command line, to recognise it (pids are reused)


class RunInfo(BaseModel):
    pid: int
    ready: bool = False
    redis_url: str | None = None
    api_url: str | None = None
    flower_url: str | None = None
    sim_url: str | None = None
    demo: bool = False
    key_prefix: str = "relay"
    config: str | None = None  # the catalogue file it serves (absolute), None for the demo
    metrics_dir: str | None = None
    children: list[ChildInfo] = []


def runfile(data_dir: Path) -> Path:
    return data_dir / "up.json"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_info(data_dir: Path) -> RunInfo | None:
    """Whatever ``up.json`` says, alive or not."""
    try:
        return RunInfo.model_validate(json.loads(runfile(data_dir).read_text()))
    except (OSError, ValueError, ValidationError):
        return None


def read_running(data_dir: Path) -> RunInfo | None:
    """The running farm's info, or None (a stale file from a crashed run is ignored)."""
    info = read_info(data_dir)
    return info if info is not None and pid_alive(info.pid) else None


def write_running(data_dir: Path, info: RunInfo) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = runfile(data_dir).with_suffix(".tmp")
    tmp.write_text(info.model_dump_json(indent=2))
    tmp.replace(runfile(data_dir))


def clear_running(data_dir: Path) -> None:
    runfile(data_dir).unlink(missing_ok=True)


@contextlib.contextmanager
def up_lock(data_dir: Path) -> Iterator[bool]:
    """Hold ``up.lock`` for the block; yields False (holding nothing) when another has it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle: IO[str] = (data_dir / "up.lock").open("a")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        handle.close()  # closing releases the lock


def cmdline(pid: int) -> str:
    """A process's command line, space-separated ("" when it is gone or unreadable)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def leftovers(info: RunInfo) -> list[ChildInfo]:
    """Children a crashed ``relay up`` left running (still alive, same command line)."""
    return [c for c in info.children if c.cmd and cmdline(c.pid).startswith(c.cmd)]


def farm_api_url(settings: Settings) -> str:
    """Where the farm's API answers: the running ``relay up``'s, else ``RELAY_HOST:PORT``."""
    info = read_running(settings.data_dir)
    if info is not None and info.api_url:
        return info.api_url
    return f"http://{client_host(settings.host)}:{settings.port}"


def client_host(bind: str) -> str:
    """Where a local client reaches a server bound to ``bind`` (any-address: loopback)."""
    try:
        unspecified = ipaddress.ip_address(bind).is_unspecified
    except ValueError:
        return bind
    return "127.0.0.1" if unspecified else bind
