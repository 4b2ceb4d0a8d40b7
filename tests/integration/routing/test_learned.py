"""Learned routing end to end: a provider that keeps answering JSON requests in prose loses
the JSON traffic to another one, and keeps the chat traffic (docs/routing.md)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from tests.support.farm import FarmFactory

pytestmark = pytest.mark.integration

JSON_FORMAT = {"type": "json_object"}
# Far more than learning takes (a few answers, a tally write and a snapshot read): a farm
# that never learns fails here instead of looping.
MAX_JSON_REQUESTS = 200


def ask(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "chat", "messages": [{"role": "user", "content": text}], **extra}


def ask_json(http: httpx.Client, i: int) -> httpx.Response:
    # No JSON in the prompt: a model that echoes it in prose sends no JSON either.
    body = ask(f"Give the city Oslo and the number {i} as JSON.", response_format=JSON_FORMAT)
    r = http.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    content = r.json()["choices"][0]["message"]["content"]
    assert isinstance(orjson.loads(content), dict)  # every client got JSON
    return r


def test_a_provider_answering_json_in_prose_loses_json_traffic_but_keeps_chat(
    make_farm: FarmFactory,
) -> None:
    farm = make_farm()
    farm.sim("prosy", invalid_json_rate=1.0)
    with farm.client() as http:
        first = ask_json(http, 0)
        # prosy ranks first (a tie, listed first), answers in prose, is asked again with the
        # validator's words (docs/answers.md) and still answers prose: the request fails over.
        tries = farm.settings.repair_max_attempts + 1
        assert first.headers["x-relay-provider"] == "tidy"
        assert first.headers["x-relay-attempts"] == str(tries + 1)
        assert first.headers["x-relay-route"].startswith("extraction/json [json_output]")
        sent = 1
        while True:  # until a JSON request goes to tidy first
            r = ask_json(http, sent)
            sent += 1
            if r.headers["x-relay-attempts"] == "1" or sent >= MAX_JSON_REQUESTS:
                break
        assert r.headers["x-relay-provider"] == "tidy", r.headers
        learned_after = sent
        later = [ask_json(http, sent + k) for k in range(10)]
        chat = [
            http.post("/v1/chat/completions", json=ask(f"Tell me a joke, {k}.")) for k in range(10)
        ]
    print(f"\nJSON requests before the first one went to tidy first: {learned_after}")
    # Learning takes a tally write (0.25 s) and a snapshot read (0.25 s), not a count.
    assert learned_after < MAX_JSON_REQUESTS
    assert [r.headers["x-relay-provider"] for r in later] == ["tidy"] * 10
    assert [r.headers["x-relay-attempts"] for r in later] == ["1"] * 10
    assert all(r.status_code == 200 for r in chat)
    assert [r.headers["x-relay-provider"] for r in chat] == ["prosy"] * 10  # chat stays
    assert chat[0].headers["x-relay-route"].startswith("chat/text; prosy/prosy-m: ")
    prosy = farm.sim_stats()["providers"]["prosy"]
    assert prosy["invalid_json"] == tries * (learned_after - 1)  # none once it learned
