"""``GET /metrics`` is cheap however many scrape, and can ask for a token (issue 15, item 6).

An attack: each scrape read the live gauges from Redis and rendered every metric, ~21 ms of the
API's CPU, so twenty scrapers took another tenant's median from 23 to 280 ms; and anyone could
scrape. Collections are counted here from outside, by the commands Redis gets (``MONITOR``):
each one reads the length of every provider queue (``LLEN {prefix}.{provider}``) exactly once.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from relay_core.dispatch.envelope import queue_name
from relay_core.settings import Settings
from tests.security.support import RedisTap, error_shape_problem
from tests.support.farm import api_process, make_settings, model, sim_provider, write_catalogue

pytestmark = pytest.mark.integration

PROVIDER = "p-none"
TOKEN = "metrics-token-4f1c9e0b7a2d"
SCRAPERS = 20


def nowhere_settings(folder: Path, **overrides: Any) -> Settings:
    nowhere = sim_provider(PROVIDER, "openai", "http://127.0.0.1:9", [model("m")])
    return make_settings(write_catalogue(folder / "relay.yaml", [nowhere]), **overrides)


def collections(tap: RedisTap, settings: Settings) -> int:
    key = f'"{queue_name(settings.key_prefix, PROVIDER)}"'.encode()
    return sum(1 for line in tap.commands(b"LLEN") if line.endswith(key))


def scrape_all(url: str, n: int, **headers: str) -> list[httpx.Response]:
    with ThreadPoolExecutor(n) as pool, httpx.Client(timeout=60, headers=headers) as http:
        return list(pool.map(lambda _: http.get(f"{url}/metrics"), range(n)))


def test_twenty_concurrent_scrapes_cost_one_collection(tmp_path: Path) -> None:
    settings = nowhere_settings(tmp_path, metrics_cache_s=60)
    with api_process(settings) as (_, url), RedisTap() as tap:
        answers = scrape_all(url, SCRAPERS)
    assert [r.status_code for r in answers] == [200] * SCRAPERS
    assert all(f'relay_queue_depth{{provider="{PROVIDER}"}}' in r.text for r in answers)
    assert len({r.content for r in answers}) == 1
    assert 1 <= collections(tap, settings) <= 2, f"{collections(tap, settings)} collections"


def test_without_a_cache_each_scrape_collects_once(tmp_path: Path) -> None:
    settings = nowhere_settings(tmp_path, metrics_cache_s=0)
    with api_process(settings) as (_, url), RedisTap() as tap:
        for _ in range(3):
            assert httpx.get(f"{url}/metrics", timeout=30).status_code == 200
    assert collections(tap, settings) == 3


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer sk-gateway-key-0123456789", "Bearer"],
)
def test_a_metrics_token_is_asked_for(tmp_path: Path, authorization: str | None) -> None:
    settings = nowhere_settings(tmp_path, metrics_token=TOKEN, api_keys="sk-gateway-key-0123456789")
    headers = {} if authorization is None else {"authorization": authorization}
    with api_process(settings) as (_, url), RedisTap() as tap:
        refused = httpx.get(f"{url}/metrics", headers=headers, timeout=30)
        allowed = httpx.get(
            f"{url}/metrics", headers={"authorization": f"Bearer {TOKEN}"}, timeout=30
        )
        health = httpx.get(f"{url}/health", timeout=30)
    assert refused.status_code == 401
    content_type = refused.headers.get("content-type", "")
    assert error_shape_problem(401, content_type, refused.content) is None, refused.text
    assert TOKEN not in refused.text and "relay_" not in refused.text
    assert allowed.status_code == 200 and "relay_queue_depth" in allowed.text
    assert health.status_code == 200
    assert collections(tap, settings) == 1  # the refused scrape collected nothing
