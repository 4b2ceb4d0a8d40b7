"""Streaming a multipart upload to storage (a folder here), whatever the chunking."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from relay_core.batch.client.upload import Upload, receive_upload
from relay_core.errors import InvalidRequest, PayloadTooLarge
from relay_core.storage.local import LocalStorage

BOUNDARY = "xXxBoundary123"
CTYPE = f"multipart/form-data; boundary={BOUNDARY}"


def form(content: bytes, purpose: str = "batch", filename: str = "q.jsonl") -> bytes:
    b = BOUNDARY.encode()
    return (
        b"--"
        + b
        + b'\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n'
        + purpose.encode()
        + b"\r\n--"
        + b
        + f'\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'.encode()
        + b"Content-Type: application/jsonl\r\n\r\n"
        + content
        + b"\r\n--"
        + b
        + b"--\r\n"
    )


async def chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


@pytest.mark.parametrize("size", [1, 7, 64, 65536])
async def test_the_file_part_lands_on_disk_intact(tmp_path: Path, size: int) -> None:
    content = b'{"a": 1}\n{"b": "\r\n--not-a-boundary"}\nlast line without newline'
    dest = tmp_path / "f"
    upload = await receive_upload(
        chunks(form(content), size), CTYPE, (LocalStorage(tmp_path), "f"), 10_000
    )
    assert dest.read_bytes() == content
    assert (upload.bytes, upload.lines) == (len(content), 4)
    assert upload.fields == {"purpose": "batch"} and upload.filename == "q.jsonl"


async def test_too_large_stops_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(PayloadTooLarge):
        await receive_upload(
            chunks(form(b"x" * 5000), 512), CTYPE, (LocalStorage(tmp_path), "f"), 4096
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("body", "ctype"),
    [
        (b"--xXxBoundary123--\r\n", CTYPE),  # no file part
        (b'{"file": 1}', "application/json"),
        (form(b"x"), "multipart/form-data"),  # no boundary
    ],
)
async def test_bad_uploads_are_400s(tmp_path: Path, body: bytes, ctype: str) -> None:
    with pytest.raises(InvalidRequest):
        await receive_upload(chunks(body, 64), ctype, (LocalStorage(tmp_path), "f"), 4096)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("size", [1, 5, 64, 65536])
@pytest.mark.parametrize(
    ("content", "too_long"),
    [
        (b"12345\n1234\n12345", None),  # every line at most the limit (5), the last unended
        (b"123456\n1\n", 1),
        (b"1\n\n123\n123456\n12\n", 4),
        (b"1\n22\n333\n123456", 4),  # the last line, without its newline
    ],
)
async def test_a_line_over_the_limit_is_refused_naming_it(
    tmp_path: Path, size: int, content: bytes, too_long: int | None
) -> None:
    received = receive_upload(
        chunks(form(content), size), CTYPE, (LocalStorage(tmp_path), "f"), 10_000, max_line_bytes=5
    )
    if too_long is None:
        assert (await received).bytes == len(content)
        return
    with pytest.raises(InvalidRequest) as caught:
        await received
    assert caught.value.message.startswith(f"Line {too_long} of the file is longer than the 5 ")
    assert caught.value.param == "file"
    assert list(tmp_path.iterdir()) == []


async def test_an_upload_refused_once_in_leaves_nothing(tmp_path: Path) -> None:
    def refuse(upload: Upload) -> None:
        raise InvalidRequest(f"purpose {upload.fields['purpose']} refused")

    with pytest.raises(InvalidRequest, match="purpose fine-tune refused"):
        await receive_upload(
            chunks(form(b"{}\n", purpose="fine-tune"), 64),
            CTYPE,
            (LocalStorage(tmp_path), "f"),
            4096,
            accept=refuse,
        )
    assert list(tmp_path.iterdir()) == []
