"""Receive a ``multipart/form-data`` upload straight to disk, a chunk at a time.

The body is parsed as it arrives (python-multipart's streaming parser): the ``file`` part is
written to a temporary file next to its final place, the small fields (``purpose``) are kept,
and nothing is ever held whole in memory. Going over ``max_bytes``, or a line of the file going
over ``max_line_bytes`` (newline not counted), stops the upload at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from relay_core.errors import InvalidRequest, PayloadTooLarge

MAX_FIELD_BYTES = 4096
MAX_BOUNDARY = 256  # python-multipart's limit (RFC 2046 allows 70)


@dataclass(slots=True)
class Upload:
    """What arrived: the form fields, and the file part (already on disk at ``path``)."""

    path: Path
    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None
    bytes: int = 0
    newlines: int = 0
    ends_with_newline: bool = True

    @property
    def lines(self) -> int:
        """Lines in the file (a last line without its newline counts too)."""
        return self.newlines + (0 if self.ends_with_newline or self.bytes == 0 else 1)


@dataclass(slots=True)
class _Part:
    name: str | None = None
    filename: str | None = None
    header_field: bytes = b""
    header_value: bytes = b""
    data: bytearray = field(default_factory=bytearray)


class _Receiver:
    """python-multipart callbacks: routes each part's bytes to the file or to a field."""

    def __init__(
        self,
        upload: Upload,
        out: BinaryIO,
        max_bytes: int,
        file_field: str,
        max_line_bytes: int | None = None,
    ) -> None:
        self.upload = upload
        self.out = out
        self.max_bytes = max_bytes
        self.file_field = file_field
        self.max_line_bytes = max_line_bytes
        self.line_bytes = 0  # of the file's line being received, so far
        self.part = _Part()
        self.seen_file = False

    def on_part_begin(self) -> None:
        self.part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.part.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.part.header_value += data[start:end]

    def on_header_end(self) -> None:
        if self.part.header_field.lower() == b"content-disposition":
            _, params = parse_options_header(self.part.header_value)
            name, filename = params.get(b"name"), params.get(b"filename")
            self.part.name = name.decode("utf-8", "replace") if name else None
            self.part.filename = filename.decode("utf-8", "replace") if filename else None
        self.part.header_field = self.part.header_value = b""

    def on_headers_finished(self) -> None:
        if self.part.name == self.file_field:
            if self.seen_file:
                raise InvalidRequest("Send one file per upload.", param=self.file_field)
            self.seen_file = True
            self.upload.filename = self.part.filename or "upload.jsonl"

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.part.name != self.file_field:
            if len(self.part.data) + end - start > MAX_FIELD_BYTES:
                raise InvalidRequest(f"Form field '{self.part.name}' is too long.")
            self.part.data += data[start:end]
            return
        chunk = data[start:end]
        if not chunk:
            return
        self.upload.bytes += len(chunk)
        if self.upload.bytes > self.max_bytes:
            raise PayloadTooLarge(
                f"The file is larger than the {self.max_bytes // (1024 * 1024)} MB allowed.",
                param=self.file_field,
            )
        if self.max_line_bytes is not None:
            self._check_lines(chunk, self.max_line_bytes)
        self.upload.newlines += chunk.count(b"\n")
        self.upload.ends_with_newline = chunk.endswith(b"\n")
        self.out.write(chunk)

    def _check_lines(self, chunk: bytes, limit: int) -> None:
        """Refuse the file once one of its lines is over ``limit``; a chunk's lines are
        looked at one by one only when the chunk could hold such a line whole."""
        before = self.upload.newlines  # the lines that ended before this chunk
        first = chunk.find(b"\n")
        if first < 0:
            self.line_bytes += len(chunk)
            if self.line_bytes > limit:
                raise self._too_long(before + 1, limit)
            return
        if self.line_bytes + first > limit:
            raise self._too_long(before + 1, limit)
        last = chunk.rfind(b"\n")
        if last - first - 1 > limit:
            for k, line in enumerate(chunk[first + 1 : last].split(b"\n")):
                if len(line) > limit:
                    raise self._too_long(before + 2 + k, limit)
        self.line_bytes = len(chunk) - last - 1
        if self.line_bytes > limit:
            raise self._too_long(before + chunk.count(b"\n") + 1, limit)

    def _too_long(self, n: int, limit: int) -> InvalidRequest:
        return InvalidRequest(
            f"Line {n} of the file is longer than the {limit:,} bytes a batch line may hold "
            "(RELAY_BATCH_MAX_LINE_BYTES).",
            param=self.file_field,
        )

    def on_part_end(self) -> None:
        if self.part.name and self.part.name != self.file_field:
            self.upload.fields[self.part.name] = self.part.data.decode("utf-8", "replace")


def boundary_of(content_type: str | None) -> bytes:
    ctype, params = parse_options_header(content_type or "")
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise InvalidRequest("Upload the file as multipart/form-data (fields 'file', 'purpose').")
    if len(boundary) > MAX_BOUNDARY:
        raise InvalidRequest(f"The multipart boundary is longer than {MAX_BOUNDARY} characters.")
    return boundary


async def receive_upload(
    chunks: AsyncIterator[bytes],
    content_type: str | None,
    dest: Path,
    max_bytes: int,
    file_field: str = "file",
    *,
    max_line_bytes: int | None = None,
) -> Upload:
    """Stream a multipart body to ``dest`` (its file part); the partial file is removed on
    any error. Raises :class:`InvalidRequest` when there is no file part, or when a line of
    the file is over ``max_line_bytes``."""
    boundary = boundary_of(content_type)
    upload = Upload(path=dest)
    try:
        with _open(dest) as out:
            receiver = _Receiver(upload, out, max_bytes, file_field, max_line_bytes)
            callbacks = {
                name: getattr(receiver, name)
                for name in (
                    "on_part_begin",
                    "on_header_field",
                    "on_header_value",
                    "on_header_end",
                    "on_headers_finished",
                    "on_part_data",
                    "on_part_end",
                )
            }
            parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
            try:
                async for chunk in chunks:
                    parser.write(chunk)
                parser.finalize()
            except FormParserError as exc:
                raise InvalidRequest("The multipart body is malformed.") from exc
            if parser.state != MultipartState.END:
                raise InvalidRequest(
                    "The multipart body is incomplete: it ends before its closing boundary."
                )
        if not receiver.seen_file:
            raise InvalidRequest(
                "No file in the upload: send it as the 'file' field.", param="file"
            )
    except BaseException:
        discard(dest)
        raise
    return upload


def _open(dest: Path) -> BinaryIO:
    dest.parent.mkdir(parents=True, exist_ok=True)
    return dest.open("wb")


def discard(dest: Path) -> None:
    """Remove a partial or refused upload (gone already is fine)."""
    with contextlib.suppress(OSError):
        dest.unlink()
