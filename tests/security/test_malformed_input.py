"""Malformed input gets a 4xx in OpenAI's error shape, never a 500, and stores nothing.

Regressions of an attack on the API: a lone surrogate in a chat string made the task encoder
raise (500); a multipart boundary over python-multipart's 256 characters raised inside the
parser (500); results of a batch whose output file was deleted made the file response raise
(500); a multipart body cut before its closing boundary was stored, truncated, as a file; and
uvicorn answered malformed HTTP with a text/plain 400.
"""

from __future__ import annotations

import socket
from pathlib import Path
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
from tests.security.support import error_shape_problem
from tests.support.farm import (
    FarmFactory,
    api_process,
    make_settings,
    model,
    sim_provider,
    write_catalogue,
)

pytestmark = pytest.mark.integration


def shaped(r: httpx.Response) -> dict[str, Any]:
    problem = error_shape_problem(r.status_code, r.headers.get("content-type", ""), r.content)
    assert problem is None, problem
    error: dict[str, Any] = r.json()["error"]
    return error


LONE_SURROGATE = '"\\ud800"'  # JSON text: valid JSON, but no UTF-8 can carry it


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (
            '{"model": "chat", "messages": [{"role": "user", "content": %s}]}',
            "messages.0.content",
        ),
        (
            '{"model": "chat", "messages": [{"role": "user", "content": "hi"}], "user": %s}',
            "user",
        ),
        (
            '{"model": "chat", "messages": [{"role": "user", "content": "hi"}],'
            ' "metadata": {"k": %s}}',
            "metadata.k",
        ),
    ],
)
def test_a_lone_surrogate_is_a_400_naming_the_field(
    make_farm: FarmFactory, body: str, param: str
) -> None:
    farm = make_farm()
    with farm.client() as http:
        r = http.post(
            "/v1/chat/completions",
            content=(body % LONE_SURROGATE).encode(),
            headers={"content-type": "application/json"},
        )
        still_fine = http.post(
            "/v1/chat/completions",
            json={"model": "chat", "messages": [{"role": "user", "content": "hi"}]},
        )
    assert r.status_code == 400, r.text
    error = shaped(r)
    assert error["param"] == param
    assert "surrogate" in error["message"]
    assert still_fine.status_code == 200, still_fine.text


def multipart(boundary: str, content: bytes, closed: bool = True) -> bytes:
    b = boundary.encode()
    parts = (
        b"--" + b + b'\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
        b"--" + b + b'\r\nContent-Disposition: form-data; name="file"; filename="in.jsonl"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n" + content
    )
    return parts + (b"\r\n--" + b + b"--\r\n" if closed else b"")


def test_a_boundary_too_long_is_a_400(make_farm: FarmFactory) -> None:
    farm = make_farm()
    boundary = "b" * 300
    with farm.client() as http:
        r = http.post(
            "/v1/files",
            content=multipart(boundary, jsonl([chat_line("a", "hi")])),
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
        files = http.get("/v1/files").json()["data"]
    assert r.status_code == 400, r.text
    assert "boundary" in shaped(r)["message"]
    assert files == []


def test_a_body_without_its_closing_boundary_is_refused_and_not_stored(
    make_farm: FarmFactory, tmp_path: Path
) -> None:
    farm = make_farm(storage_dir=tmp_path / "files")
    boundary = "relay-boundary-1234"
    content = jsonl([chat_line(str(i), f"question {i}") for i in range(20)])
    with farm.client() as http:
        cut = http.post(
            "/v1/files",
            content=multipart(boundary, content[: len(content) // 2], closed=False),
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
        files = http.get("/v1/files").json()["data"]
        whole = http.post(
            "/v1/files",
            content=multipart(boundary, content),
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
    assert cut.status_code == 400, cut.text
    assert "incomplete" in shaped(cut)["message"]
    assert files == []
    assert whole.status_code == 200, whole.text
    assert whole.json()["bytes"] == len(content)
    stored = [p.name for p in (tmp_path / "files").iterdir() if p.name != MARKER]
    assert stored == [whole.json()["id"]]  # no partial or staging file left


def test_results_of_a_batch_whose_output_file_was_deleted_are_a_404(
    batch_farm: BatchFarm,
) -> None:
    farm = batch_farm()
    with farm.client() as http:
        batch = create(http, upload(http, jsonl([chat_line("a", "hi"), chat_line("b", "ho")])))
        done = wait_for(http, batch["id"])
        assert done["status"] == "completed", done
        output = done["output_file_id"]
        assert http.delete(f"/v1/files/{output}").status_code == 200
        results = http.get(f"/v1/batches/{batch['id']}/results")
        content = http.get(f"/v1/files/{output}/content")
    assert results.status_code in (404, 410), results.text
    assert output in shaped(results)["message"]
    assert content.status_code == 404, content.text
    shaped(content)


def test_malformed_http_gets_an_openai_shaped_400(tmp_path: Path) -> None:
    nowhere = sim_provider("p-none", "openai", "http://127.0.0.1:9", [model("m")])
    settings = make_settings(write_catalogue(tmp_path / "relay.yaml", [nowhere]))
    with api_process(settings) as (_, url):
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n")
            raw = b""
            while chunk := sock.recv(65536):
                raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines)}
    assert status_line.startswith("HTTP/1.1 400"), raw
    problem = error_shape_problem(400, headers.get("content-type", ""), body)
    assert problem is None, problem
