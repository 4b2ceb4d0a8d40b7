"""``up.json`` and ``up.lock``: one ``relay up`` per data directory, found by other commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from relay_cli.farms import farm_settings
from relay_cli.runfile import (
    ChildInfo,
    RunInfo,
    farm_api_url,
    leftovers,
    read_running,
    up_lock,
    write_running,
)
from relay_core.settings import Settings


def test_the_lock_is_exclusive_and_released_on_exit(tmp_path: Path) -> None:
    with up_lock(tmp_path) as first:
        assert first
        with up_lock(tmp_path) as second:
            assert not second
        # Another process sees it held too.
        code = (
            "import sys; from pathlib import Path; from relay_cli.runfile import up_lock\n"
            f"with up_lock(Path({str(tmp_path)!r})) as mine: sys.exit(0 if mine else 3)"
        )
        assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 3
    with up_lock(tmp_path) as again:
        assert again


def test_a_stale_run_file_is_not_a_running_farm(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    write_running(tmp_path, RunInfo(pid=int(done.stdout), ready=True, api_url="http://x"))
    assert read_running(tmp_path) is None
    write_running(tmp_path, RunInfo(pid=os.getpid(), ready=True, api_url="http://x"))
    info = read_running(tmp_path)
    assert info is not None and info.api_url == "http://x"


def test_leftovers_are_children_still_running_the_same_command(tmp_path: Path) -> None:
    code = "import time; print('up', flush=True); time.sleep(30)"
    sleeper = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert sleeper.stdout is not None
        assert sleeper.stdout.readline() == b"up\n"  # it runs its own command line now
        cmd = f"{sys.executable} -c"
        info = RunInfo(
            pid=1,
            children=[
                ChildInfo(name="alive", pid=sleeper.pid, cmd=cmd),
                ChildInfo(name="reused", pid=sleeper.pid, cmd="redis-server"),
                ChildInfo(name="gone", pid=2**22 + 7, cmd=cmd),
            ],
        )
        assert [c.name for c in leftovers(info)] == ["alive"]
    finally:
        sleeper.kill()
        sleeper.wait()
        assert sleeper.stdout is not None
        sleeper.stdout.close()


def test_farm_settings_follow_the_running_farm_unless_told_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("RELAY_REDIS_URL", "RELAY_KEY_PREFIX", "RELAY_SIM_URL", "RELAY_DEMO"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RELAY_DATA_DIR", str(tmp_path))
    info = RunInfo(
        pid=os.getpid(),
        ready=True,
        redis_url="redis://127.0.0.1:16399/0",
        api_url="http://127.0.0.1:18000",
        sim_url="http://127.0.0.1:18900",
        demo=True,
        key_prefix="farm",
    )
    write_running(tmp_path, info)
    s = farm_settings()
    assert (s.redis_url, s.key_prefix, s.sim_url, s.demo) == (
        "redis://127.0.0.1:16399/0",
        "farm",
        "http://127.0.0.1:18900",
        True,
    )
    assert farm_api_url(s) == "http://127.0.0.1:18000"
    monkeypatch.setenv("RELAY_REDIS_URL", "redis://elsewhere:6379/1")
    assert farm_settings().redis_url == "redis://elsewhere:6379/1"


def test_without_a_farm_the_api_url_comes_from_settings(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, host="0.0.0.0", port=9000)
    assert farm_api_url(settings) == "http://127.0.0.1:9000"
