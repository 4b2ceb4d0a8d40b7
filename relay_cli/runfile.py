"""``.relay/up.json``: where a running ``relay up`` says what it started, and its lock.

Other commands (``relay status``, ``relay batch``) read it to find the farm when no
``RELAY_REDIS_URL`` / ``RELAY_API_URL`` is set; a second ``relay up`` reads it to refuse.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel


class RunInfo(BaseModel):
    pid: int
    redis_url: str
    api_url: str
    flower_url: str | None = None
    sim_url: str | None = None
    demo: bool = False


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


def read_running(data_dir: Path) -> RunInfo | None:
    """The running farm's info, or None (a stale file from a crashed run is ignored)."""
    path = runfile(data_dir)
    try:
        info = RunInfo.model_validate(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None
    return info if pid_alive(info.pid) else None


def write_running(data_dir: Path, info: RunInfo) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = runfile(data_dir).with_suffix(".tmp")
    tmp.write_text(info.model_dump_json(indent=2))
    tmp.replace(runfile(data_dir))


def clear_running(data_dir: Path) -> None:
    runfile(data_dir).unlink(missing_ok=True)
