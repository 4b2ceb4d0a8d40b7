"""The API the console stands on, over HTTP against a real farm: the pool view, prompts turned
into batch lines, and a stored file's estimate, each seen only by the key that may."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from pydantic import SecretStr

from tests.support.farm import Farm, FarmFactory

KEY_A, KEY_B = "sk-console-a-123456", "sk-console-b-654321"
ASK = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}


def keyed(farm: Farm, key: str) -> httpx.Client:
    return farm.client(headers={"Authorization": f"Bearer {key}"})


def upload_prompts(http: httpx.Client, name: str, data: bytes, **fields: str) -> httpx.Response:
    return http.post("/v1/relay/files/prompts", files={"file": (name, data)}, data=fields)


def content(http: httpx.Client, file_id: str) -> list[dict[str, Any]]:
    r = http.get(f"/v1/files/{file_id}/content")
    assert r.status_code == 200, r.text
    return [json.loads(line) for line in r.text.splitlines()]


def test_the_pool_counts_recent_calls_and_shows_limits_workers_and_no_batches(
    make_farm: FarmFactory,
) -> None:
    farm = make_farm(api_keys=[SecretStr(KEY_A)])
    with keyed(farm, KEY_A) as http:
        for _ in range(4):
            assert http.post("/v1/chat/completions", json=ASK).status_code == 200
        deadline = time.monotonic() + 10
        while True:  # the workers write their counts every second
            view = http.get("/v1/relay/pool").json()
            calls = sum(p["recent"]["requests"] for p in view["providers"])
            if calls >= 4:
                break
            assert time.monotonic() < deadline, view
            time.sleep(0.1)  # polling a condition, bounded by the deadline above
    assert calls == 4
    assert {p["name"] for p in view["providers"]} == {
        "p-openai",
        "p-gemini",
        "p-claude",
        "p-ollama",
    }
    assert all(p["breaker"] == "closed" for p in view["providers"])
    served = [p for p in view["providers"] if p["recent"]["requests"]]
    assert all(p["recent"]["latency_s"]["p50"] is not None for p in served)
    assert len(view["workers"]) == 1 and "p-openai" in view["workers"][0]["providers"]
    assert "batches" not in view
    assert httpx.get(f"{farm.url}/v1/relay/pool").status_code == 401


def test_prompts_become_batch_lines_and_only_their_owner_may_estimate_them(
    make_farm: FarmFactory,
) -> None:
    farm = make_farm(api_keys=[SecretStr(KEY_A), SecretStr(KEY_B)])
    with keyed(farm, KEY_A) as a, keyed(farm, KEY_B) as b:
        text = upload_prompts(a, "q.txt", b"first\n\nthird\n", model="chat")
        assert text.status_code == 200, text.text
        assert text.json()["filename"] == "q.jsonl"
        lines = content(a, text.json()["id"])
        assert [(x["custom_id"], x["body"]["messages"][0]["content"]) for x in lines] == [
            ("line-1", "first"),
            ("line-3", "third"),
        ]
        assert {x["body"]["model"] for x in lines} == {"chat"}

        csv = upload_prompts(a, "q.csv", b"id,prompt\nx1,hello\nx2,world\n")
        assert [x["custom_id"] for x in content(a, csv.json()["id"])] == ["x1", "x2"]
        assert {x["body"]["model"] for x in content(a, csv.json()["id"])} == {"meta-model"}

        est = a.post(f"/v1/relay/files/{text.json()['id']}/estimate")
        assert est.status_code == 200, est.text
        assert est.json()["lines"] == 2
        assert est.json()["rate_per_s"] > 0
        other = b.post(f"/v1/relay/files/{text.json()['id']}/estimate")
        assert other.status_code == 404
        assert b.get(f"/v1/files/{text.json()['id']}/content").status_code == 404

        jsonl = upload_prompts(a, "q.jsonl", b'{"custom_id": "1"}\n')
        assert jsonl.status_code == 400 and "POST /v1/files" in jsonl.json()["error"]["message"]
        latin1 = upload_prompts(a, "q.txt", "café\n".encode("latin-1"))
        assert latin1.status_code == 400 and "UTF-8" in latin1.json()["error"]["message"]
        unknown = upload_prompts(a, "q.txt", b"hi\n", model="no-such-model")
        assert unknown.status_code == 404
        empty = upload_prompts(a, "q.txt", b"\n\n")
        assert empty.status_code == 400
