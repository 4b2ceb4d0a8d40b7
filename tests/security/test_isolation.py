"""Gateway keys are tenants: files, batches and usage of one key are invisible to another.

Another key gets exactly what it would get for an id that does not exist (404, same error
code), so it cannot even learn that the id exists. Each test is skipped only when its route
module is not there (``importorskip``): the routes are built alongside this suite.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.farm.conftest import four_providers
from tests.support.farm import Farm, FarmFactory

pytestmark = pytest.mark.integration

KEY_A = "sk-tenant-a-0123456789"
KEY_B = "sk-tenant-b-9876543210"


def tenant_farm(make_farm: FarmFactory, tmp_path: Path) -> Farm:
    return make_farm(api_keys=f"{KEY_A},{KEY_B}", storage_dir=tmp_path / "files")


def as_key(farm: Farm, key: str | None) -> httpx.Client:
    return farm.client(headers={"Authorization": f"Bearer {key}"} if key else {})


def lines(n: int) -> bytes:
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
    rows = [
        {"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}
        for i in range(n)
    ]
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def upload(http: httpx.Client, data: bytes) -> str:
    r = http.post("/v1/files", files={"file": ("in.jsonl", data)}, data={"purpose": "batch"})
    assert r.status_code == 200, r.text
    file_id: str = r.json()["id"]
    return file_id


def same_as_missing(other: httpx.Response, missing: httpx.Response) -> None:
    """``other`` (someone else's id) answers exactly like ``missing`` (no such id)."""
    assert other.status_code == missing.status_code == 404, (other.text, missing.text)
    assert other.json()["error"]["code"] == missing.json()["error"]["code"]
    assert other.json()["error"]["type"] == missing.json()["error"]["type"]


def test_files_of_one_key_are_invisible_to_another(make_farm: FarmFactory, tmp_path: Path) -> None:
    pytest.importorskip("relay_api.routes.files")
    farm = tenant_farm(make_farm, tmp_path)
    data = lines(2)
    with as_key(farm, KEY_A) as a, as_key(farm, KEY_B) as b, as_key(farm, None) as anonymous:
        file_id = upload(a, data)
        for method, path in [
            ("GET", "/v1/files/{}"),
            ("GET", "/v1/files/{}/content"),
            ("DELETE", "/v1/files/{}"),
        ]:
            same_as_missing(
                b.request(method, path.format(file_id)),
                b.request(method, path.format("file-doesnotexist0000")),
            )
            assert anonymous.request(method, path.format(file_id)).status_code == 401
        assert file_id not in {f["id"] for f in b.get("/v1/files").json()["data"]}
        r = b.post(
            "/v1/batches",
            json={
                "input_file_id": file_id,
                "endpoint": "/v1/chat/completions",
                "completion_window": "24h",
            },
        )
        assert r.status_code == 404, r.text
        # Untouched by B's attempts: still A's, whole.
        assert a.get(f"/v1/files/{file_id}/content").content == data
        assert file_id in {f["id"] for f in a.get("/v1/files").json()["data"]}


def test_batches_of_one_key_are_invisible_to_another(
    make_farm: FarmFactory, tmp_path: Path
) -> None:
    pytest.importorskip("relay_api.routes.batches")
    farm = tenant_farm(make_farm, tmp_path)
    with as_key(farm, KEY_A) as a, as_key(farm, KEY_B) as b:
        file_id = upload(a, lines(3))
        r = a.post(
            "/v1/batches",
            json={
                "input_file_id": file_id,
                "endpoint": "/v1/chat/completions",
                "completion_window": "24h",
            },
        )
        assert r.status_code == 200, r.text
        batch_id = r.json()["id"]
        for method, path in [
            ("GET", "/v1/batches/{}"),
            ("GET", "/v1/batches/{}/progress"),
            ("GET", "/v1/batches/{}/results"),
            ("POST", "/v1/batches/{}/cancel"),
            ("POST", "/v1/batches/{}/retry"),
        ]:
            same_as_missing(
                b.request(method, path.format(batch_id)),
                b.request(method, path.format("batch_doesnotexist0000")),
            )
        assert batch_id not in {x["id"] for x in b.get("/v1/batches").json()["data"]}
        mine = a.get(f"/v1/batches/{batch_id}")
        assert mine.status_code == 200
        assert mine.json()["status"] not in ("cancelling", "cancelled")  # B's cancel did nothing
        assert batch_id in {x["id"] for x in a.get("/v1/batches").json()["data"]}


def usage_when(http: httpx.Client, requests: int, timeout_s: float = 10.0) -> dict[str, Any]:
    """The caller's usage once it counts ``requests`` (counted after the answer, by workers)."""
    deadline = time.monotonic() + timeout_s
    while True:
        usage: dict[str, Any] = http.get("/v1/usage").json()
        if usage["totals"]["requests"] >= requests:
            return usage
        assert time.monotonic() < deadline, usage
        time.sleep(0.05)  # polling a condition, bounded by the deadline


def test_usage_of_one_key_is_invisible_to_another(make_farm: FarmFactory, tmp_path: Path) -> None:
    pytest.importorskip("relay_api.routes.usage")
    farm = tenant_farm(make_farm, tmp_path)
    ask = {"model": "chat", "messages": [{"role": "user", "content": "count me"}]}
    with as_key(farm, KEY_A) as a, as_key(farm, KEY_B) as b, as_key(farm, None) as anonymous:
        for _ in range(2):
            assert a.post("/v1/chat/completions", json=ask).status_code == 200
        mine = usage_when(a, 2)
        theirs = b.get("/v1/usage").json()
        assert anonymous.get("/v1/usage").status_code == 401
    assert mine["totals"]["requests"] == 2 and mine["data"]
    assert theirs["data"] == [] and theirs["totals"]["requests"] == 0
    assert theirs["owner"] != mine["owner"]
    assert KEY_A not in json.dumps(mine) + json.dumps(theirs)


def estimate_backlog(http: httpx.Client) -> int:
    r = http.post("/v1/batches/estimate", json={"requests": [{"model": "chat", "count": 1}]})
    assert r.status_code == 200, r.text
    backlog: int = r.json()["backlog_lines"]
    return backlog


def test_batch_estimate_counts_only_the_callers_own_backlog(
    make_farm: FarmFactory, tmp_path: Path
) -> None:
    """#15 item 10: another tenant's running lines are not the caller's to count."""
    farm = make_farm(
        lambda sim_url: four_providers(sim_url, rpm=1),  # lines wait for capacity: a backlog
        api_keys=f"{KEY_A},{KEY_B}",
        storage_dir=tmp_path / "files",
    )
    with as_key(farm, KEY_A) as a, as_key(farm, KEY_B) as b:
        body = {"input_file_id": upload(a, lines(12)), "endpoint": "/v1/chat/completions"}
        r = a.post("/v1/batches", json={**body, "completion_window": "24h"})
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 30
        while (mine := estimate_backlog(a)) == 0:  # counted once the worker has validated it
            assert time.monotonic() < deadline, a.get(f"/v1/batches/{r.json()['id']}").text
            time.sleep(0.05)  # polling a condition, bounded by the deadline
        theirs = estimate_backlog(b)
    assert 0 < mine <= 12
    assert theirs == 0


def test_cached_answers_of_one_key_are_never_served_to_another(
    make_farm: FarmFactory, tmp_path: Path
) -> None:
    """The exact cache is scoped per gateway key (docs/answers.md): B asking A's question
    word for word is a miss, answered by a provider, never A's answer."""
    farm = tenant_farm(make_farm, tmp_path)
    body = {
        "model": "p-openai/p-openai-m",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0,
    }
    with as_key(farm, KEY_A) as a, as_key(farm, KEY_B) as b:
        first_a = a.post("/v1/chat/completions", json=body)
        second_a = a.post("/v1/chat/completions", json=body)
        first_b = b.post("/v1/chat/completions", json=body)
    assert [r.status_code for r in (first_a, second_a, first_b)] == [200] * 3
    assert [r.headers["x-relay-cache"] for r in (first_a, second_a, first_b)] == [
        "miss",
        "hit",
        "miss",
    ]
    assert farm.sim_stats()["providers"]["p-openai"]["requests"] == 2
