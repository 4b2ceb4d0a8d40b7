"""The admin API, and the server itself (start, stop, docs examples)."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from pathlib import Path

import httpx
import pytest

from relay_sim import SimConfig, SimServer
from tests.integration.simulator.support import anthropic, entry, openai, patched, stats, wait_until

# ---- admin ----------------------------------------------------------------------------------


def test_admin_stats_count_every_outcome(http):
    for i in range(5):
        openai(http, "stats", f"q{i}")  # rpm=3: 3 accepted, 2 rate limited
    http.post("/_sim/reset").raise_for_status()
    assert stats(http, "stats")["requests"] == 0
    for i in range(4):
        openai(http, "stats", f"q{i}")  # 3 accepted, 1 rate limited: the window was emptied
    openai(http, "stats", "hi", model="nope")
    s = stats(http, "stats")
    assert s["api"] == "openai"
    assert {
        k: s[k] for k in ("requests", "accepted", "succeeded", "rate_limited", "client_errors")
    } == {
        "requests": 5,
        "accepted": 3,
        "succeeded": 3,
        "rate_limited": 1,
        "client_errors": 1,
    }
    assert (
        s["total_tokens"] == s["prompt_tokens"] + s["completion_tokens"] == 3 * (1 + 4)
    )  # "q0" → "sim:stats/m1: q0"
    assert s["models"]["m1"]["accepted"] == 3
    assert s["models"]["e1"]["requests"] == 0
    assert s["in_flight"] == 0 and s["max_in_flight"] == 1
    totals = http.get("/_sim/stats").json()["totals"]
    assert totals["requests"] >= s["requests"]


async def test_admin_stats_track_requests_in_flight(sim, http):
    async with httpx.AsyncClient(base_url=sim.url, timeout=5) as client:
        body = {"model": "m1", "messages": [{"role": "user", "content": "hi"}]}
        replies = await asyncio.gather(
            *(client.post("/inflight/v1/chat/completions", json=body) for _ in range(8))
        )
    assert {r.status_code for r in replies} == {200}
    s = stats(http, "inflight")
    assert s["max_in_flight"] == 8  # all eight were in their 300 ms of latency together
    assert s["in_flight"] == 0


def test_admin_health_and_provider_config(http):
    health = http.get("/_sim/health").json()
    assert health["status"] == "ok"
    assert "oa" in health["providers"]
    shown = http.get("/_sim/providers/oa").json()
    assert shown["api_key"] == "**********"
    assert shown["rpm"] == 1000
    assert http.get("/_sim/providers/nobody").status_code == 404


def test_admin_patch_is_validated(http):
    r = http.post("/_sim/providers/f-openai", json={"latency_ms": -1})
    assert r.status_code == 400
    assert r.json()["error"]["details"][0]["loc"] == ["latency_ms"]
    assert http.post("/_sim/providers/f-openai", json={"outgae": True}).status_code == 400
    assert http.post("/_sim/providers/f-openai", content=b"[1]").status_code == 400
    assert http.post("/_sim/providers/nobody", json={}).status_code == 404


def test_admin_patch_can_set_a_key(http):
    with patched(http, "f-anthropic", api_key="new-key"):
        assert anthropic(http, "f-anthropic", "hi").status_code == 401
        assert anthropic(http, "f-anthropic", "hi", key="new-key").status_code == 200
    assert anthropic(http, "f-anthropic", "hi").status_code == 200


# ---- the server itself ----------------------------------------------------------------------


def test_stopping_releases_hanging_requests():
    config = SimConfig.model_validate({"providers": [entry("h", "openai", hang=True)]})
    server = SimServer(config).start()
    outcome: list[BaseException | int] = []

    def ask() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            try:
                outcome.append(openai(client, "h", "hi").status_code)
            except httpx.HTTPError as exc:
                outcome.append(exc)

    thread = threading.Thread(target=ask)
    thread.start()
    admin = httpx.Client(base_url=server.url, timeout=5)
    assert wait_until(lambda: stats(admin, "h")["hung"] == 1)
    admin.close()
    started = time.perf_counter()
    server.stop()
    thread.join(10)
    assert not thread.is_alive()
    assert time.perf_counter() - started < 5
    assert outcome  # answered (503) or cut off, but no longer waiting


async def test_async_context_manager_and_base_urls():
    config = SimConfig.model_validate(
        {
            "providers": [
                entry("a", "openai"),
                entry("g", "gemini"),
                entry("c", "anthropic"),
                entry("o", "ollama"),
            ]
        }
    )
    async with SimServer(config) as server:
        assert server.base_url("a") == f"{server.url}/a/v1"
        assert server.base_url("g") == f"{server.url}/g/v1beta"
        assert server.base_url("c") == f"{server.url}/c"
        async with httpx.AsyncClient(timeout=5) as client:
            r = await client.post(
                f"{server.base_url('o')}/api/chat",
                json={
                    "model": "m1",
                    "stream": False,
                    "messages": [{"role": "user", "content": "hi"}],
                },
            )
            assert r.json()["message"]["content"] == "sim:o/m1: hi"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/_sim/health")


def test_the_docs_examples_run():
    doc = Path(__file__).parents[3] / "docs" / "simulator.md"
    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(), flags=re.DOTALL)
    assert blocks
    for block in blocks:
        exec(compile(block, str(doc), "exec"), {})
