"""Downloads of a stored file through the real API, with its files in a folder and in an S3
bucket (moto's server): ``HEAD``, one byte range (206), several (206 multipart/byteranges),
an unsatisfiable range (416), a malformed one (400); the batch results route likewise."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from relay_api.app import create_app
from relay_core.settings import Settings
from relay_core.storage.base import CHUNK
from tests.support.farm import REDIS_URL, require_redis
from tests.support.s3 import Bucket
from tests.support.servers import serve

pytestmark = pytest.mark.integration

KEY = "sk-relay-downloads-test-key"
# Over two storage chunks, so a range can span chunks; every line a valid batch line.
LINE = b'{"custom_id": "c", "method": "POST", "url": "/v1/chat/completions", "body": {}}\n'
DATA = LINE * (2 * CHUNK // len(LINE) + 3)


@pytest.fixture(params=["local", "s3"])
def http(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[httpx.Client]:
    redis = require_redis()
    prefix = f"dl{uuid.uuid4().hex[:10]}"
    storage: dict[str, Any] = {"storage_dir": tmp_path / "files"}
    if request.param == "s3":
        bucket: Bucket = request.getfixturevalue("s3_bucket")
        storage |= {"storage_url": bucket.url, "s3_endpoint_url": bucket.endpoint_url}
    settings = Settings(demo=True, redis_url=REDIS_URL, key_prefix=prefix, api_keys=KEY, **storage)
    try:
        with serve(create_app(settings)) as url:
            auth = {"authorization": f"Bearer {KEY}"}
            with httpx.Client(base_url=url, headers=auth, timeout=30) as client:
                yield client
    finally:
        keys = list(redis.scan_iter(match=f"{prefix}*"))
        if keys:
            redis.delete(*keys)


@pytest.fixture
def file_id(http: httpx.Client) -> str:
    up = http.post("/v1/files", files={"file": ("in.jsonl", DATA)}, data={"purpose": "batch"})
    assert up.status_code == 200, up.text
    found: str = up.json()["id"]
    return found


def content(http: httpx.Client, file_id: str, method: str = "GET", **headers: str):
    return http.request(method, f"/v1/files/{file_id}/content", headers=headers)


def test_whole_and_head(http: httpx.Client, file_id: str) -> None:
    whole = content(http, file_id)
    head = content(http, file_id, "HEAD")
    assert whole.status_code == 200 and whole.content == DATA
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["content-length"] == str(len(DATA))
    assert head.status_code == 200 and head.content == b""
    for name in ("accept-ranges", "content-length", "content-type", "content-disposition"):
        assert head.headers[name] == whole.headers[name], name
    assert head.headers["content-disposition"] == 'attachment; filename="in.jsonl"'


@pytest.mark.parametrize(
    ("spec", "start", "end"),
    [
        ("bytes=0-0", 0, 1),
        ("bytes=10-99", 10, 100),
        (f"bytes={CHUNK - 5}-{CHUNK + 4}", CHUNK - 5, CHUNK + 5),  # across a chunk's edge
        ("bytes=100-", 100, len(DATA)),
        ("bytes=-50", len(DATA) - 50, len(DATA)),
        (f"bytes=5-{len(DATA) + 1000}", 5, len(DATA)),  # past the end: up to the end
    ],
)
def test_one_range(http: httpx.Client, file_id: str, spec: str, start: int, end: int) -> None:
    got = content(http, file_id, range=spec)
    head = content(http, file_id, "HEAD", range=spec)
    assert got.status_code == 206, got.text
    assert got.content == DATA[start:end]
    assert got.headers["content-range"] == f"bytes {start}-{end - 1}/{len(DATA)}"
    assert got.headers["content-length"] == str(end - start)
    assert got.headers["accept-ranges"] == "bytes"
    assert head.status_code == 206 and head.content == b""
    assert head.headers["content-range"] == got.headers["content-range"]


def test_several_ranges_are_one_multipart_answer(http: httpx.Client, file_id: str) -> None:
    got = content(http, file_id, range="bytes=500-599, 0-9, 5-19, -10")
    assert got.status_code == 206
    media, _, boundary = got.headers["content-type"].partition("; boundary=")
    assert media == "multipart/byteranges"
    assert int(got.headers["content-length"]) == len(got.content)
    size = len(DATA)
    parts = got.content.split(f"--{boundary}".encode())
    assert parts[0] == b"" and parts[-1] == b"--"
    found = []
    for part in parts[1:-1]:
        head, _, body = part.partition(b"\r\n\r\n")
        assert body.endswith(b"\r\n")
        found.append((head.strip().split(b"\r\n")[-1].decode(), body[:-2]))
    assert (
        found
        == [  # sorted, the overlapping two merged
            (f"Content-Range: bytes 0-19/{size}", DATA[0:20]),
            (f"Content-Range: bytes 500-599/{size}", DATA[500:600]),
            (f"Content-Range: bytes {size - 10}-{size - 1}/{size}", DATA[-10:]),
        ]
    )


def test_a_range_past_the_end_is_a_416(http: httpx.Client, file_id: str) -> None:
    for method in ("GET", "HEAD"):
        got = content(http, file_id, method, range=f"bytes={len(DATA)}-")
        assert got.status_code == 416
        assert got.headers["content-range"] == f"bytes */{len(DATA)}"
    error = content(http, file_id, range=f"bytes={len(DATA) + 5}-{len(DATA) + 9}").json()
    assert error["error"]["code"] == "range_not_satisfiable"
    assert error["error"]["param"] == "range"


@pytest.mark.parametrize("spec", ["lines=0-5", "bytes", "bytes=abc", "bytes=20-10"])
def test_a_malformed_range_is_a_400(http: httpx.Client, file_id: str, spec: str) -> None:
    got = content(http, file_id, range=spec)
    assert got.status_code == 400, got.text
    assert got.json()["error"]["param"] == "range"


def test_if_range_gets_the_whole_file(http: httpx.Client, file_id: str) -> None:
    got = content(http, file_id, range="bytes=0-9", **{"if-range": '"some-etag"'})
    assert got.status_code == 200 and got.content == DATA


def test_another_keys_file_and_a_deleted_one_are_404s(http: httpx.Client, file_id: str) -> None:
    assert content(http, "file-nope", "HEAD").status_code == 404
    assert http.delete(f"/v1/files/{file_id}").status_code == 200
    assert content(http, file_id, "HEAD", range="bytes=0-9").status_code == 404
    assert content(http, file_id, range="bytes=0-9").status_code == 404
