"""``/metrics``, a worker's ``--metrics-port``, ``relay status`` and ``relay check`` against a
real farm (Redis, simulator, worker processes, the API over HTTP)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from relay_core.catalogue.loader import load_catalogue
from relay_sim.config import SimConfig
from relay_sim.server import SimServer
from tests.integration.ops.conftest import ProcessFactory, Setup
from tests.support.farm import (
    make_settings,
    model,
    running_farm,
    settings_env,
    sim_provider,
    wait_for_workers,
    write_catalogue,
)
from tests.support.servers import free_port

pytestmark = pytest.mark.integration

ASK = {"model": "chat", "messages": [{"role": "user", "content": "count me"}]}


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in exposition text (labels in any order), or None."""
    want = {f'{k}="{v}"' for k, v in labels.items()}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            head, _, value = line.rpartition(" ")
            inside = head[len(name) :].strip("{}")
            got = set(inside.split(",")) if inside else set()
            if got == want:
                return float(value)
    return None


def test_api_metrics_count_requests_and_read_live_gauges(setup: Setup) -> None:
    with running_farm(setup.settings, setup.sim.url, workers=1) as farm, farm.client() as http:
        assert http.post("/v1/chat/completions", json=ASK).status_code == 200
        text = http.get("/metrics").text
    ok = {"endpoint": "chat", "provider": "p-openai", "model": "p-openai-m", "status": "200"}
    assert sample(text, "relay_requests_total", **ok) == 1
    assert (
        sample(text, "relay_request_duration_seconds_count", endpoint="chat", provider="p-openai")
        == 1
    )
    assert sample(text, "relay_queue_depth", provider="p-openai") == 0
    assert sample(text, "relay_breaker_state", provider="p-openai", model="") == 0
    assert sample(text, "relay_workers") == 1


def test_a_worker_serves_its_own_metrics_port(setup: Setup, relay_process: ProcessFactory) -> None:
    port = free_port()
    worker = relay_process("worker", "--concurrency", "4", "--metrics-port", str(port))
    wait_for_workers(setup.settings, 1, [worker])
    with running_farm(setup.settings, setup.sim.url, workers=0) as farm, farm.client() as http:
        for _ in range(3):
            assert http.post("/v1/chat/completions", json=ASK).status_code == 200
    labels = {"provider": "p-openai", "model": "p-openai-m", "kind": "interactive", "outcome": "ok"}
    deadline = time.monotonic() + 10
    while True:  # calls are recorded just after each reply goes out
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        if sample(text, "relay_upstream_calls_total", **labels) == 3 or time.monotonic() > deadline:
            break
        time.sleep(0.05)  # polling, bounded by the deadline
    assert sample(text, "relay_upstream_calls_total", **labels) == 3
    assert (
        sample(
            text, "relay_upstream_latency_seconds_count", provider="p-openai", model="p-openai-m"
        )
        == 3
    )
    assert (
        sample(text, "relay_queue_wait_seconds_count", provider="p-openai", kind="interactive") == 3
    )
    assert (
        sample(
            text, "relay_tokens_total", provider="p-openai", model="p-openai-m", type="completion"
        )
        or 0
    ) > 0


def test_relay_status_shows_the_farm(setup: Setup) -> None:
    with running_farm(setup.settings, setup.sim.url, workers=1) as farm, farm.client() as http:
        assert http.post("/v1/chat/completions", json=ASK).status_code == 200
        env = settings_env(setup.settings)
        out = subprocess.run(
            [sys.executable, "-m", "relay_cli.main", "status", "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        screen = subprocess.run(
            [sys.executable, "-m", "relay_cli.main", "status"],
            env={**env, "COLUMNS": "160"},
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
    data = json.loads(out.stdout)
    (row,) = data["providers"]
    assert row["name"] == "p-openai" and row["enabled"] is True and row["key"] == "not needed"
    assert row["live"]["breaker"] == "closed" and row["live"]["queue_depth"] == 0
    assert len(data["snapshot"]["workers"]) == 1
    assert "p-openai" in screen.stdout and "Workers" in screen.stdout


def test_relay_status_says_when_redis_is_unreachable(setup: Setup) -> None:
    env = {**settings_env(setup.settings), "RELAY_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    out = subprocess.run(
        [sys.executable, "-m", "relay_cli.main", "status"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert out.returncode == 1
    assert "not reachable" in out.stderr and "relay up" in out.stderr


def test_relay_check_passes_fails_and_skips_with_reasons(tmp_path: Path) -> None:
    def providers(sim_url: str) -> list[dict[str, object]]:
        keyed = sim_provider("p-keyed", "anthropic", sim_url, [model("k-m")])
        keyed["api_key_env"] = "RELAY_TEST_UNSET_KEY"
        return [
            sim_provider("p-good", "gemini", sim_url, [model("g-1"), model("g-2")]),
            sim_provider("p-down", "openai", sim_url, [model("d-m")]),
            keyed,
        ]

    draft = write_catalogue(tmp_path / "draft.yaml", providers("http://sim.invalid"))
    with SimServer(SimConfig.from_catalogue(load_catalogue(draft))) as sim:
        httpx.post(f"{sim.url}/_sim/providers/p-down", json={"outage": True}).raise_for_status()
        settings = make_settings(write_catalogue(tmp_path / "relay.yaml", providers(sim.url)))
        env = settings_env(settings)
        env.pop("RELAY_TEST_UNSET_KEY", None)
        out = subprocess.run(
            [sys.executable, "-m", "relay_cli.main", "check", "--json", "--timeout", "10"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    assert out.returncode == 1  # something failed
    verdicts = {
        (r["provider"], r["model"]): (r["verdict"], r["reason"]) for r in json.loads(out.stdout)
    }
    assert verdicts[("p-good", "g-1")] == ("PASS", "")
    assert verdicts[("p-good", "g-2")] == ("PASS", "")
    verdict, reason = verdicts[("p-down", "d-m")]
    assert verdict == "FAIL" and reason.startswith("UpstreamUnavailable (503)")
    verdict, reason = verdicts[("p-keyed", "k-m")]
    assert verdict == "SKIP" and "RELAY_TEST_UNSET_KEY is not set" in reason
