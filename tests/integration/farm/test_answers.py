"""Answers you can trust and reuse, on a real farm (docs/answers.md): JSON asked of every
provider family is checked and repaired, and a deterministic request is answered once."""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson
import pytest

from tests.integration.farm.conftest import FAMILIES
from tests.support.farm import Farm, FarmFactory

pytestmark = pytest.mark.integration

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}
FORMAT = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON}}


def ask(model: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def provider_stats(farm: Farm, name: str) -> dict[str, Any]:
    data: dict[str, Any] = farm.sim_stats()["providers"][name]
    return data


def usage_once_counted(http: httpx.Client, calls: int) -> dict[str, Any]:
    """``GET /v1/usage`` once the workers wrote their counts (every 0.5 s) of ``calls``
    upstream calls: a bounded wait on a condition."""
    deadline = time.monotonic() + 10
    while True:
        usage: dict[str, Any] = http.get("/v1/usage").json()
        if usage["totals"]["requests"] >= calls:
            assert usage["totals"]["requests"] == calls  # the hit is not an upstream call
            return usage
        assert time.monotonic() < deadline, usage
        time.sleep(0.05)


def test_prose_for_json_is_repaired_on_every_family(make_farm: FarmFactory) -> None:
    farm = make_farm(repair_max_attempts=2)
    for name, _ in FAMILIES:  # the first JSON answer of each provider is prose
        farm.sim(name, invalid_json_first=1)
    with farm.client() as http:
        for name, _ in FAMILIES:
            r = http.post(
                "/v1/chat/completions", json=ask(f"{name}/{name}-m", "who?", response_format=FORMAT)
            )
            assert r.status_code == 200, r.text
            document = orjson.loads(r.json()["choices"][0]["message"]["content"])
            assert set(document) == {"name", "age"}, (name, document)
            # The route audit: one answer repaired on this provider, then the one delivered.
            assert r.headers["x-relay-answer-checks"] == (
                f"{name}/{name}-m:1:repair,{name}/{name}-m:2:delivered"
            ), name
            assert r.headers["x-relay-attempts"] == "2"
            stats = provider_stats(farm, name)
            assert (stats["json_asked"], stats["invalid_json"], stats["succeeded"]) == (2, 1, 2)


def test_a_provider_that_never_answers_json_is_failed_over(make_farm: FarmFactory) -> None:
    farm = make_farm(repair_max_attempts=1)
    farm.sim("p-openai", invalid_json_rate=1.0)
    with farm.client(headers={"x-relay-fallback": "any"}) as http:
        r = http.post(
            "/v1/chat/completions", json=ask("p-openai/p-openai-m", "who?", response_format=FORMAT)
        )
    assert r.status_code == 200, r.text
    checks = r.headers["x-relay-answer-checks"].split(",")
    assert checks[:2] == ["p-openai/p-openai-m:1:repair", "p-openai/p-openai-m:2:failover"]
    assert checks[2].endswith(":3:delivered") and not checks[2].startswith("p-openai")
    assert provider_stats(farm, "p-openai")["succeeded"] == 2  # asked once, repaired once


def test_the_same_deterministic_request_is_answered_once(make_farm: FarmFactory) -> None:
    farm = make_farm()
    body = ask("p-gemini/p-gemini-m", "What is 2 + 2?", temperature=0)
    with farm.client() as http:
        first = http.post("/v1/chat/completions", json=body)
        second = http.post("/v1/chat/completions", json=body)
        other = http.post("/v1/chat/completions", json={**body, "max_tokens": 7})
        fresh = http.post("/v1/chat/completions", json=body, headers={"cache-control": "no-cache"})
        usage = usage_once_counted(http, calls=3)
        metrics = http.get("/metrics").text
    assert [r.status_code for r in (first, second, other, fresh)] == [200] * 4
    assert first.headers["x-relay-cache"] == "miss"
    assert second.headers["x-relay-cache"] == "hit"
    assert other.headers["x-relay-cache"] == "miss"  # an output field differs: not the same
    assert fresh.headers["x-relay-cache"] == "miss"  # no-cache: not read (but written)
    assert second.json()["choices"] == first.json()["choices"]
    assert second.headers["x-relay-provider"] == "p-gemini"
    assert second.headers["x-relay-attempts"] == "0"
    assert second.headers["x-request-id"] != first.headers["x-request-id"]
    assert provider_stats(farm, "p-gemini")["requests"] == 3  # the hit called nobody
    assert usage["totals"]["cache_hits"] == 1
    assert usage["totals"]["requests"] == 3  # the upstream calls only
    assert 'relay_answer_cache_total{kind="interactive",result="hit"} 1.0' in metrics


def test_non_deterministic_and_no_store_requests_are_not_cached(make_farm: FarmFactory) -> None:
    farm = make_farm()
    plain = ask("p-openai/p-openai-m", "Tell me a story")
    pinned = ask("p-openai/p-openai-m", "Tell me a story", seed=1)
    with farm.client() as http:
        answers = [http.post("/v1/chat/completions", json=plain) for _ in range(2)]
        stored = [
            http.post("/v1/chat/completions", json=pinned, headers={"cache-control": "no-store"})
            for _ in range(2)
        ]
        opted = [
            http.post("/v1/chat/completions", json=plain, headers={"x-relay-cache-ttl": "60"})
            for _ in range(2)
        ]
    assert all("x-relay-cache" not in r.headers for r in answers + stored)
    assert [r.headers["x-relay-cache"] for r in opted] == ["miss", "hit"]
    assert provider_stats(farm, "p-openai")["requests"] == 5


def test_near_duplicates_are_answered_only_when_asked(make_farm: FarmFactory) -> None:
    farm = make_farm()
    near = {"x-relay-near-cache": "on"}
    first = ask(
        "p-openai/p-openai-m", "Today is 2024-05-01. Summarize ticket INV-20391.", temperature=0
    )
    variant = ask(
        "p-openai/p-openai-m", "today is 2024-05-02.  Summarize ticket INV-20392", temperature=0
    )
    negated = ask(
        "p-openai/p-openai-m",
        "Today is 2024-05-01. Do not summarize ticket INV-20391.",
        temperature=0,
    )
    with farm.client() as http:
        stored = http.post("/v1/chat/completions", json=first, headers=near)
        hit = http.post("/v1/chat/completions", json=variant, headers=near)
        off = http.post("/v1/chat/completions", json=variant)  # near-duplicates off by default
        different = http.post("/v1/chat/completions", json=negated, headers=near)
    assert [r.status_code for r in (stored, off, hit, different)] == [200] * 4
    assert [r.headers["x-relay-cache"] for r in (stored, hit, off, different)] == [
        "miss",
        "hit",
        "miss",
        "miss",
    ]
    assert hit.headers["x-relay-cache-match"] == "near"
    assert hit.json()["choices"] == stored.json()["choices"]
    assert provider_stats(farm, "p-openai")["requests"] == 3
