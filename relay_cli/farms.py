"""Finding the farm a local ``relay up`` runs, from any folder.

``relay up`` writes ``up.json`` in its data directory (:mod:`relay_cli.runfile`) and, so that a
command run from another folder finds it too, a pointer to that directory in a per-user list:
``$XDG_STATE_HOME/relay/farms/<pid>.json`` (``~/.local/state/relay/farms/`` by default), removed
when it stops. A crashed ``relay up``'s pointer names a dead pid and is ignored (and removed).

A command that talks to the farm (``relay status``, ``relay check``, ``relay batch``) takes, in
order: explicit ``RELAY_*`` variables; ``up.json`` in its data directory (``RELAY_DATA_DIR``,
default ``./.relay``); else, when neither ``RELAY_DATA_DIR`` nor ``RELAY_REDIS_URL`` is set, the
one running ``relay up`` in the per-user list. :class:`Located` says which it used, or where it
looked — so "no live workers" is never said of a Redis picked by default in silence.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ValidationError

from relay_cli.runfile import RunInfo, pid_alive, read_running
from relay_core.settings import Settings


class Pointer(BaseModel):
    """One running ``relay up``: its pid and the data directory holding its ``up.json``."""

    pid: int
    data_dir: str


def registry_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    state = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local/state")
    return Path(state) / "relay" / "farms"


def register(data_dir: Path, pid: int, environ: Mapping[str, str] | None = None) -> None:
    """Add this ``relay up`` to the per-user list (best effort: a read-only home is no error)."""
    folder = registry_dir(environ)
    pointer = Pointer(pid=pid, data_dir=str(data_dir.resolve()))
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{pid}.tmp"
        tmp.write_text(pointer.model_dump_json())
        tmp.replace(folder / f"{pid}.json")


def unregister(pid: int, environ: Mapping[str, str] | None = None) -> None:
    with contextlib.suppress(OSError):
        (registry_dir(environ) / f"{pid}.json").unlink(missing_ok=True)


def registered(environ: Mapping[str, str] | None = None) -> list[tuple[Path, RunInfo]]:
    """The running, ready farms of the per-user list (stale pointers are removed)."""
    found: list[tuple[Path, RunInfo]] = []
    try:
        entries = sorted(registry_dir(environ).glob("*.json"))
    except OSError:
        return found
    for entry in entries:
        try:
            pointer = Pointer.model_validate_json(entry.read_text())
        except (OSError, ValueError, ValidationError):
            continue
        if not pid_alive(pointer.pid):
            with contextlib.suppress(OSError):
                entry.unlink()
            continue
        data_dir = Path(pointer.data_dir)
        info = read_running(data_dir)
        if info is not None and info.ready and info.pid == pointer.pid:
            found.append((data_dir, info))
    return found


@dataclass(frozen=True)
class Located:
    """The settings to reach the farm with, and how they were found."""

    settings: Settings
    info: RunInfo | None = None  # the relay up found, if any
    data_dir: Path | None = None  # where its up.json is
    looked: tuple[str, ...] = ()  # the places searched, when none was found
    others: tuple[Path, ...] = ()  # several relay ups elsewhere: none was chosen

    @property
    def ambiguous(self) -> bool:
        return bool(self.others)

    def describe(self) -> str:
        """Where the Redis URL came from, for the first line of ``relay status``."""
        if self.info is not None:
            return f"relay up, pid {self.info.pid}, {self.data_dir}"
        if self.looked:
            return "the default RELAY_REDIS_URL: no running relay up found in " + " or ".join(
                self.looked
            )
        return "RELAY_REDIS_URL"

    def several(self) -> str:
        folders = ", ".join(str(p) for p in self.others)
        return (
            f"{len(self.others)} relay ups are running ({folders}): run the command in the "
            "folder of the one you mean, or set RELAY_DATA_DIR to its data directory"
        )


def _apply(settings: Settings, info: RunInfo, env: Mapping[str, str]) -> Settings:
    update: dict[str, object] = {}
    if "RELAY_REDIS_URL" not in env and info.redis_url:
        update["redis_url"] = info.redis_url
    if "RELAY_KEY_PREFIX" not in env:
        update["key_prefix"] = info.key_prefix
    if "RELAY_CONFIG" not in env and info.config and not info.demo:
        update["config"] = Path(info.config)
    if info.demo and "RELAY_SIM_URL" not in env and info.sim_url:
        update["sim_url"] = info.sim_url
    if info.demo and "RELAY_DEMO" not in env:
        update["demo"] = True
    return settings.model_copy(update=update)


def locate(environ: Mapping[str, str] | None = None) -> Located:
    """The farm a command should talk to (see the module docstring for the order)."""
    env = os.environ if environ is None else environ
    settings = Settings()
    here = settings.data_dir.resolve()
    info = read_running(settings.data_dir)
    if info is not None and info.ready:
        return Located(_apply(settings, info, env), info, here)
    if "RELAY_REDIS_URL" in env:
        return Located(settings)
    looked: tuple[str, ...] = (str(here / "up.json"),)
    if "RELAY_DATA_DIR" in env:
        return Located(settings, looked=looked)
    elsewhere = [(d, i) for d, i in registered(env) if d.resolve() != here]
    if len(elsewhere) == 1:
        ((data_dir, info),) = elsewhere
        found = _apply(settings, info, env).model_copy(update={"data_dir": data_dir})
        return Located(found, info, data_dir)
    looked += (f"{registry_dir(env)}/ (the running relay ups)",)
    return Located(settings, looked=looked, others=tuple(d for d, _ in elsewhere))


def farm_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings for a command that talks to the farm ``relay up`` runs (:func:`locate`)."""
    return locate(environ).settings
