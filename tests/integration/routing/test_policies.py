"""Policies, key quotas and the route audit on a real farm (Redis, Celery workers, the API
over HTTP) and the simulator: docs/routing.md, "Policies", "Budgets" and "The audit"."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from relay_core.owners import owner_id
from tests.support.farm import Farm, farm_factory, model, sim_provider

pytestmark = pytest.mark.integration

KEY_A = "key-a-0123456789abcdef"  # has a quota of 2 requests a minute
KEY_B = "key-b-0123456789abcdef"  # has none
SECRET = "s" * 40
POLICIES = [
    {"name": "no-beta", "match": {"family": "chat"}, "exclude": {"providers": ["beta"]}},
    {"name": "thrifty", "match": {"header": {"x-team": "thrifty"}}, "cap": {"max_tokens": 3}},
    {
        "name": "gamma-first",
        "match": {"header": {"x-team": "gamma"}},
        "prefer": {"providers": ["gamma"]},
    },
    {"name": "cached", "match": {"header": {"x-team": "cached"}}, "cache": True},
]
AUDIT_WAIT_S = 10.0  # the audit is written just after the answer: poll for it this long


def three_providers(sim_url: str) -> list[dict[str, Any]]:
    return [
        sim_provider(name, "openai", sim_url, [model(f"{name}-m", aliases=["chat"])])
        for name in ("alpha", "beta", "gamma")
    ]


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    owner_a = owner_id(SECRET.encode(), KEY_A)
    with farm_factory(tmp_path_factory.mktemp("policies"), three_providers) as make:
        yield make(
            catalogue_extra={"policies": POLICIES},
            api_keys=f"{KEY_A},{KEY_B}",
            owner_secret=SECRET,
            key_quotas={owner_a: {"rpm": 2}},
        )


def ask(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "chat", "messages": [{"role": "user", "content": text}], **extra}


def client(farm: Farm, key: str) -> httpx.Client:
    return farm.client(headers={"Authorization": f"Bearer {key}"})


def served(farm: Farm) -> dict[str, int]:
    providers = farm.sim_stats()["providers"]
    return {name: providers[name]["requests"] for name in ("alpha", "beta", "gamma")}


def test_a_policy_excluding_a_provider_is_obeyed(farm: Farm) -> None:
    before = served(farm)
    with client(farm, KEY_B) as http:
        replies = [http.post("/v1/chat/completions", json=ask(f"Hello {i}")) for i in range(30)]
    assert [r.status_code for r in replies] == [200] * 30
    assert {r.headers["x-relay-provider"] for r in replies} <= {"alpha", "gamma"}
    assert all("policy no-beta" in r.headers["x-relay-route"] for r in replies)
    after = served(farm)
    assert after["beta"] == before["beta"]  # the simulator never saw beta called
    assert after["alpha"] + after["gamma"] - before["alpha"] - before["gamma"] == 30


def test_a_cap_reaches_the_provider(farm: Farm) -> None:
    text = "Please write me a long story about a lighthouse keeper."
    with client(farm, KEY_B) as http:
        capped = http.post(
            "/v1/chat/completions",
            json=ask(text, max_tokens=500),
            headers={"x-team": "thrifty"},
        )
        free = http.post("/v1/chat/completions", json=ask(text, max_tokens=500))
    assert capped.status_code == 200, capped.text
    choice = capped.json()["choices"][0]
    # The simulator cuts its answer at max_tokens x 4 characters: it was sent 3, not 500.
    assert len(choice["message"]["content"]) == 12
    assert choice["finish_reason"] == "length"
    assert capped.json()["usage"]["completion_tokens"] == 3
    assert "policy no-beta,thrifty" in capped.headers["x-relay-route"]
    assert free.json()["choices"][0]["finish_reason"] == "stop"
    assert text in free.json()["choices"][0]["message"]["content"]


def audit_of(http: httpx.Client, request_id: str) -> httpx.Response:
    deadline = time.monotonic() + AUDIT_WAIT_S
    while True:
        r = http.get(f"/v1/requests/{request_id}/route")
        if r.status_code != 404 or time.monotonic() > deadline:
            return r
        time.sleep(0.05)  # polling a condition, bounded by the deadline above


def test_the_route_audit_is_its_owners_alone(farm: Farm) -> None:
    farm.sim("gamma", outage=True)
    try:
        with client(farm, KEY_B) as http:
            r = http.post("/v1/chat/completions", json=ask("Hi there"), headers={"x-team": "gamma"})
            assert r.status_code == 200, r.text
            assert r.headers["x-relay-provider"] == "alpha"  # gamma preferred, down
            request_id = r.json()["id"]
            assert r.headers["x-request-id"] == request_id
            audit = audit_of(http, request_id)
            streamed = http.post(
                "/v1/chat/completions",
                json=ask("Hi again", stream=True),
                headers={"x-team": "gamma"},
            )
            assert streamed.status_code == 200 and "[DONE]" in streamed.text
            stream_audit = audit_of(http, streamed.headers["x-request-id"])
        with client(farm, KEY_A) as other:
            stranger = other.get(f"/v1/requests/{request_id}/route")
    finally:
        farm.sim("gamma", outage=False)
    assert audit.status_code == 200, audit.text
    body = audit.json()
    assert body["policies"] == ["no-beta", "gamma-first"]
    gates = {c["target"]: c["gate"] for c in body["candidates"]}
    assert gates == {
        "alpha/alpha-m": "able",
        "beta/beta-m": "excluded by policy",
        "gamma/gamma-m": "able",
    }
    assert body["chosen"] == "gamma/gamma-m"
    ranked = [c for c in body["candidates"] if c.get("rank")]
    assert all("score" in c and "success" in c for c in ranked)
    assert [(a["target"], a["result"]) for a in body["attempts"]] == [
        ("gamma/gamma-m", "upstream_unavailable"),
        ("alpha/alpha-m", "answered"),
    ]
    assert body["served_by"] == "alpha/alpha-m"
    streamed_body = stream_audit.json()
    assert streamed_body["stream"] is True
    assert [(a["target"], a["result"]) for a in streamed_body["attempts"]] == [
        ("gamma/gamma-m", "upstream_unavailable"),
        ("alpha/alpha-m", "answered"),
    ]
    assert stranger.status_code == 404
    assert stranger.json()["error"]["code"] == "not_found"


def test_a_key_over_its_quota_gets_429_while_another_is_served(farm: Farm) -> None:
    with client(farm, KEY_A) as a, client(farm, KEY_B) as b:
        first = [a.post("/v1/chat/completions", json=ask(f"A {i}")) for i in range(2)]
        over = a.post("/v1/chat/completions", json=ask("A again"))
        others = [b.post("/v1/chat/completions", json=ask(f"B {i}")) for i in range(5)]
        forecast = key_forecast(a)
    assert [r.status_code for r in first] == [200, 200]
    assert over.status_code == 429, over.text
    error = over.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_exceeded", "key_quota_rpm")
    assert 1 <= int(over.headers["Retry-After"]) <= 30  # a request refills every 30 s
    assert [r.status_code for r in others] == [200] * 5
    (rpm,) = forecast["key"]
    assert (rpm["scope"], rpm["limit"], rpm["of"]) == (
        f"key:{owner_id(SECRET.encode(), KEY_A)}",
        "rpm",
        2,
    )
    assert rpm["left"] < 1  # both requests of the minute taken
    assert rpm["pace_per_min"] > 0  # the worker's calls for this key, decayed
    assert "exhausted_in_s" in rpm


def key_forecast(http: httpx.Client) -> dict[str, Any]:
    """GET /v1/usage's forecast once the workers' spend for the key was written (every
    0.5 s)."""
    deadline = time.monotonic() + AUDIT_WAIT_S
    while True:
        r = http.get("/v1/usage")
        assert r.status_code == 200, r.text
        forecast: dict[str, Any] = r.json()["forecast"]
        if forecast["key"] and forecast["key"][0]["pace_per_min"] > 0:
            return forecast
        assert time.monotonic() < deadline, forecast
        time.sleep(0.05)  # polling a condition, bounded by the deadline above


def test_a_policy_turns_the_exact_cache_on_for_its_requests(farm: Farm) -> None:
    body = ask("Tell me about lighthouses", temperature=0.9)  # not cached by default
    with client(farm, KEY_B) as http:
        plain = [http.post("/v1/chat/completions", json=body) for _ in range(2)]
        team = {"x-team": "cached"}
        cached = [http.post("/v1/chat/completions", json=body, headers=team) for _ in range(2)]
    assert [r.headers.get("x-relay-cache") for r in plain] == [None, None]
    assert [r.headers.get("x-relay-cache") for r in cached] == ["miss", "hit"]
