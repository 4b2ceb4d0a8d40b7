"""Bad input: OpenAI-style errors, and nothing enqueued.

Problems visible at once are 400s (or 404s, 413s) from the API; problems in the file's lines
make the batch ``failed`` with ``errors.data[{code, message, line, param}]``.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from relay_core.storage.marker import MARKER
from tests.integration.batch.conftest import (
    BatchFarm,
    chat_line,
    create,
    jsonl,
    upload,
    wait_for,
)

pytestmark = pytest.mark.integration

GOOD = chat_line("ok", "fine")


def _with(line: dict[str, Any], **change: Any) -> dict[str, Any]:
    return {**line, **change}


BAD_LINES: list[tuple[str, bytes, str, str | None]] = [
    ("not-json", b'{"custom_id": "x", ', "invalid_json_line", None),
    ("not-object", b"[1, 2, 3]", "invalid_json_line", None),
    (
        "no-custom-id",
        json.dumps(_with(GOOD, custom_id="")).encode(),
        "missing_required_parameter",
        "custom_id",
    ),
    (
        "duplicate",
        json.dumps(_with(GOOD, custom_id="ok")).encode(),
        "duplicate_custom_id",
        "custom_id",
    ),
    (
        "method",
        json.dumps(_with(GOOD, custom_id="m", method="GET")).encode(),
        "invalid_method",
        "method",
    ),
    (
        "url",
        json.dumps(_with(GOOD, custom_id="u", url="/v1/embeddings")).encode(),
        "invalid_url",
        "url",
    ),
    (
        "no-messages",
        json.dumps(_with(GOOD, custom_id="b", body={"model": "chat"})).encode(),
        "invalid_request",
        "body.messages",
    ),
    (
        "bad-field",
        json.dumps(chat_line("t", "x", temperature=9)).encode(),
        "invalid_request",
        "body.temperature",
    ),
    (
        "stream",
        json.dumps(chat_line("s", "x", stream=True)).encode(),
        "invalid_request",
        "body.stream",
    ),
    (
        "unknown-model",
        json.dumps(chat_line("g", "x", model="gpt-9")).encode(),
        "model_not_found",
        "body.model",
    ),
    (
        "no-match",
        json.dumps(chat_line("n", "x", model="meta-model", model_name="zzz")).encode(),
        "invalid_request",
        "body.model_name",
    ),
]


def test_each_bad_line_fails_its_batch_naming_the_line(batch_farm: BatchFarm) -> None:
    farm = batch_farm()
    with farm.client() as http:
        created = {
            name: create(http, upload(http, jsonl([GOOD, chat_line("two", "x")]) + b"\n" + bad))
            for name, bad, _code, _param in BAD_LINES
        }
        finals = {name: wait_for(http, b["id"]) for name, b in created.items()}
    for name, _bad, code, param in BAD_LINES:
        final = finals[name]
        assert final["status"] == "failed", name
        assert final["failed_at"] and final["output_file_id"] is None, name
        (error,) = final["errors"]["data"]
        assert (error["code"], error["param"]) == (code, param), name
        assert error["line"] == 3, name  # the blank line is not a request
        assert error["message"], name
    assert _upstream_requests(farm) == 0  # nothing was enqueued, not even the good lines


def test_too_many_lines_and_empty_files_fail(batch_farm: BatchFarm) -> None:
    farm = batch_farm(batch_max_lines=3)
    with farm.client() as http:
        many = create(http, upload(http, jsonl([chat_line(f"l{i}", "x") for i in range(4)])))
        empty = create(http, upload(http, b"\n\n"))
        many, empty = wait_for(http, many["id"]), wait_for(http, empty["id"])
    assert many["status"] == empty["status"] == "failed"
    assert many["errors"]["data"] == [
        {
            "code": "too_many_requests",
            "message": "The file has more than 3 requests.",
            "param": None,
            "line": 4,
        }
    ]
    assert empty["errors"]["data"][0]["code"] == "empty_file"
    assert _upstream_requests(farm) == 0


def _upstream_requests(farm: Any) -> int:
    return sum(p["requests"] for p in farm.sim_stats()["providers"].values())


CREATE_REFUSALS: list[tuple[dict[str, Any], int, str]] = [
    ({"endpoint": "/v1/completions"}, 400, "endpoint"),
    ({"completion_window": "1h"}, 400, "completion_window"),
    ({"completion_window": "soon"}, 400, "completion_window"),
    ({"completion_window": "90d"}, 400, "completion_window"),
    ({"metadata": {f"k{i}": "v" for i in range(17)}}, 400, "metadata"),
    ({"metadata": {"k": "v" * 513}}, 400, "metadata.k"),
    ({"input_file_id": "file-0123456789abcdef01234567"}, 404, "file_id"),
    ({"model": "gpt-9"}, 404, "model"),
    ({"completion_window": None}, 400, "completion_window"),
]


def test_create_refuses_what_it_can_see_at_once(batch_farm: BatchFarm) -> None:
    farm = batch_farm(batch_min_window_s=86400)
    with farm.client() as http:
        good = {
            "input_file_id": upload(http, jsonl([GOOD])),
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
        }
        for change, status, param in CREATE_REFUSALS:
            r = http.post("/v1/batches", json={**good, **change})
            assert r.status_code == status, (change, r.text)
            assert r.json()["error"]["param"] == param, change
            assert r.json()["error"]["type"] == "invalid_request_error", change
        listed = http.get("/v1/batches").json()
    assert listed["data"] == []


def test_upload_limits(batch_farm: BatchFarm) -> None:
    farm = batch_farm(batch_max_file_bytes=1000)
    with farm.client() as http:
        big = http.post(
            "/v1/files", files={"file": ("b.jsonl", b"x" * 1001)}, data={"purpose": "batch"}
        )
        purpose = http.post(
            "/v1/files", files={"file": ("b.jsonl", b"{}\n")}, data={"purpose": "fine-tune"}
        )
        no_file = http.post("/v1/files", data={"purpose": "batch"})
        not_multipart = http.post("/v1/files", content=b"{}")
        listed = http.get("/v1/files").json()
    assert big.status_code == 413 and big.json()["error"]["code"] == "payload_too_large"
    assert purpose.status_code == 400 and purpose.json()["error"]["param"] == "purpose"
    assert no_file.status_code == 400
    assert not_multipart.status_code == 400
    assert listed["data"] == []
    left = [p for p in farm.settings.storage_dir.glob("*") if p.name != MARKER]
    assert left == []  # nothing left on disk but the API's storage token


def test_files_and_batches_are_private_to_their_key(batch_farm: BatchFarm) -> None:
    farm = batch_farm(api_keys="key-a,key-b")
    a = httpx.Client(base_url=farm.url, headers={"Authorization": "Bearer key-a"}, timeout=30)
    b = httpx.Client(base_url=farm.url, headers={"Authorization": "Bearer key-b"}, timeout=30)
    with a, b:
        file_id = upload(a, jsonl([GOOD]))
        batch = create(a, file_id)
        for path in (
            f"/v1/files/{file_id}",
            f"/v1/files/{file_id}/content",
            f"/v1/batches/{batch['id']}",
            f"/v1/batches/{batch['id']}/progress",
            f"/v1/batches/{batch['id']}/results",
        ):
            assert b.get(path).status_code == 404, path
            assert a.get(path).status_code == 200, path
        assert b.delete(f"/v1/files/{file_id}").status_code == 404
        assert b.post(f"/v1/batches/{batch['id']}/cancel").status_code == 404
        stolen = b.post(
            "/v1/batches",
            json={
                "input_file_id": file_id,
                "endpoint": "/v1/chat/completions",
                "completion_window": "24h",
            },
        )
        assert stolen.status_code == 404
        assert b.get("/v1/files").json()["data"] == []
        assert b.get("/v1/batches").json()["data"] == []
        assert wait_for(a, batch["id"])["status"] == "completed"
        assert httpx.get(f"{farm.url}/v1/files").status_code == 401
