"""Finding the running ``relay up`` from any folder (``relay status``, ``relay check``,
``relay batch``), or saying exactly where it looked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from relay_cli.farms import locate, register, registry_dir, unregister
from relay_cli.runfile import RunInfo, write_running


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A shell in a folder with no farm of its own, no RELAY_* variables, its own state dir."""
    for name in [k for k in os.environ if k.startswith("RELAY_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def farm(folder: Path, pid: int, port: int) -> Path:
    data_dir = folder / ".relay"
    info = RunInfo(
        pid=pid,
        ready=True,
        redis_url=f"redis://127.0.0.1:{port}/0",
        api_url="http://127.0.0.1:18000",
        key_prefix="farm",
        config=str(folder / "relay.yaml"),
    )
    write_running(data_dir, info)
    register(data_dir, pid)
    return data_dir


def test_a_farm_started_in_another_folder_is_found(elsewhere: Path, tmp_path: Path) -> None:
    data_dir = farm(tmp_path / "project", os.getpid(), 16399)
    found = locate()
    assert found.info is not None and found.data_dir == data_dir
    s = found.settings
    assert (s.redis_url, s.key_prefix) == ("redis://127.0.0.1:16399/0", "farm")
    assert s.config == tmp_path / "project" / "relay.yaml"  # its catalogue, not ./relay.yaml
    assert s.data_dir == data_dir
    assert f"pid {os.getpid()}" in found.describe() and str(data_dir) in found.describe()


def test_without_a_farm_it_says_where_it_looked(elsewhere: Path) -> None:
    found = locate()
    assert found.info is None and found.settings.redis_url == "redis://127.0.0.1:6379/0"
    said = found.describe()
    assert "default RELAY_REDIS_URL" in said
    assert str(elsewhere / ".relay" / "up.json") in said and str(registry_dir()) in said


def test_a_stopped_farm_is_forgotten(elsewhere: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    farm(tmp_path / "crashed", int(done.stdout), 16399)
    assert locate().info is None
    assert not list(registry_dir().glob("*.json"))  # the dead pid's pointer is removed


def test_two_farms_elsewhere_are_not_guessed_between(elsewhere: Path, tmp_path: Path) -> None:
    farm(tmp_path / "a", os.getpid(), 16399)
    farm(tmp_path / "b", os.getppid(), 16400)
    found = locate()
    assert found.ambiguous and found.info is None
    assert "RELAY_DATA_DIR" in found.several() and str(tmp_path / "b" / ".relay") in found.several()
    unregister(os.getppid())
    assert locate().settings.redis_url == "redis://127.0.0.1:16399/0"


def test_explicit_settings_are_not_overridden_by_a_farm_elsewhere(
    elsewhere: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    farm(tmp_path / "project", os.getpid(), 16399)
    monkeypatch.setenv("RELAY_REDIS_URL", "redis://mine:6379/2")
    assert locate().settings.redis_url == "redis://mine:6379/2"
    monkeypatch.delenv("RELAY_REDIS_URL")
    monkeypatch.setenv("RELAY_DATA_DIR", str(elsewhere / "data"))
    found = locate()
    assert found.info is None and str(elsewhere / "data" / "up.json") in found.describe()
