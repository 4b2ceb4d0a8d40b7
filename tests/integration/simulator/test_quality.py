"""Quality profiles per provider and task family (issue 16, item 9): empty answers, prose
where JSON was asked, answers marked wrong, each for the families it names, and changed
mid-run through the admin API."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from relay_sim import SimConfig, SimServer
from relay_sim.quality import WRONG_MARKER
from tests.integration.simulator.support import openai, stats

CODING = "Write a Python function that reverses a list."
CHAT = "Tell me about your weekend."
JSON = 'Extract the fields as JSON: name Ada, born 1815. Return {"name": ..., "born": ...}.'

CONFIG = SimConfig.model_validate(
    {
        "seed": 3,
        "providers": [
            {
                "name": name,
                "api": "openai",
                "models": [{"id": "m1"}],
                "quality": quality,
            }
            for name, quality in (
                ("bad-coder", {"coding": {"empty": 1.0}, "*": {"wrong": 1.0}}),
                ("bad-json", {"extraction": {"invalid_json": 1.0}}),
                ("some", {"*": {"empty": 0.3}}),
                ("later", {}),
            )
        ],
    }
)


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with SimServer(CONFIG) as sim, httpx.Client(base_url=sim.url, timeout=5) as client:
        yield client


def _text(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    content: str = response.json()["choices"][0]["message"]["content"]
    return content


def test_each_family_gets_its_own_quality_and_the_rest_the_default(http: httpx.Client) -> None:
    assert _text(openai(http, "bad-coder", CODING)) == ""
    chat = _text(openai(http, "bad-coder", CHAT))
    assert chat == f"sim:bad-coder/m1: {CHAT} {WRONG_MARKER}"
    s = stats(http, "bad-coder")
    assert (s["empty_answers"], s["wrong_answers"], s["succeeded"]) == (1, 1, 2)


def test_prose_where_json_was_asked_only_for_the_family_named(http: httpx.Client) -> None:
    asked = openai(http, "bad-json", JSON, response_format={"type": "json_object"})
    with pytest.raises(ValueError):
        json.loads(_text(asked))
    assert _text(openai(http, "bad-json", CODING)) == f"sim:bad-json/m1: {CODING}"
    assert stats(http, "bad-json")["invalid_json"] == 1


def test_a_share_is_drawn_from_the_seeded_rng(http: httpx.Client) -> None:
    texts = [_text(openai(http, "some", f"{CHAT} {i}")) for i in range(200)]
    empty = texts.count("")
    assert 40 <= empty <= 80  # 30 % of 200, seeded
    assert stats(http, "some")["empty_answers"] == empty


def test_quality_changes_mid_run_through_the_admin_api(http: httpx.Client) -> None:
    assert _text(openai(http, "later", CHAT)).endswith(CHAT)
    patch = {"quality": {"chat": {"wrong": 1.0, "latency_ms": 5}}}
    shown = http.post("/_sim/providers/later", json=patch).json()
    assert shown["quality"]["chat"] == {
        "empty": 0.0,
        "invalid_json": 0.0,
        "wrong": 1.0,
        "latency_ms": 5.0,
    }
    assert _text(openai(http, "later", CHAT)).endswith(WRONG_MARKER)
    refused = http.post("/_sim/providers/later", json={"quality": {"poetry": {"empty": 1}}})
    assert refused.status_code == 400
    http.post("/_sim/providers/later", json={"quality": {}}).raise_for_status()
    assert _text(openai(http, "later", CHAT)).endswith(CHAT)
