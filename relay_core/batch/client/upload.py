"""Receive a ``multipart/form-data`` upload straight to storage, a chunk at a time.

The body is parsed as it arrives (python-multipart's streaming parser): the ``file`` part is
streamed to object storage (:mod:`relay_core.storage`: a staged file renamed into place, or an
S3 multipart upload), the small fields (``purpose``) are kept, and nothing is ever held whole
in memory: each chunk of the body is written before the next is read. Going over
``max_bytes``, or a line of the file going over ``max_line_bytes`` (newline not counted),
stops the upload at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from relay_core.errors import InvalidRequest, PayloadTooLarge
from relay_core.storage.base import ObjectStorage

MAX_FIELD_BYTES = 4096
MAX_BOUNDARY = 256  # python-multipart's limit (RFC 2046 allows 70)


@dataclass(slots=True)
class Upload:
    """What arrived: the form fields, and the file part (in storage under ``name``)."""

    name: str
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
        max_bytes: int,
        file_field: str,
        max_line_bytes: int | None = None,
    ) -> None:
        self.upload = upload
        self.pending: list[bytes] = []  # file bytes parsed, not yet written
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
        self.pending.append(chunk)

    def take(self) -> bytes:
        data = b"".join(self.pending)
        self.pending.clear()
        return data

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


_CALLBACKS = (
    "on_part_begin",
    "on_header_field",
    "on_header_value",
    "on_header_end",
    "on_headers_finished",
    "on_part_data",
    "on_part_end",
)


async def receive_upload(
    chunks: AsyncIterator[bytes],
    content_type: str | None,
    dest: tuple[ObjectStorage, str],
    max_bytes: int,
    file_field: str = "file",
    *,
    max_line_bytes: int | None = None,
    accept: Callable[[Upload], None] | None = None,
) -> Upload:
    """Stream a multipart body's file part to ``dest`` (a storage and a name). Nothing is
    stored on any error, nor when ``accept`` (called once the body is in) raises. Raises
    :class:`InvalidRequest` when there is no file part, or when a line of the file is over
    ``max_line_bytes``."""
    boundary = boundary_of(content_type)
    storage, name = dest
    upload = Upload(name=name)
    receiver = _Receiver(upload, max_bytes, file_field, max_line_bytes)
    callbacks = {callback: getattr(receiver, callback) for callback in _CALLBACKS}
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    async with storage.open_write(name) as out:
        try:
            async for chunk in chunks:
                parser.write(chunk)
                if receiver.pending:
                    await out.write(receiver.take())
            parser.finalize()
        except FormParserError as exc:
            raise InvalidRequest("The multipart body is malformed.") from exc
        if parser.state != MultipartState.END:
            raise InvalidRequest(
                "The multipart body is incomplete: it ends before its closing boundary."
            )
        if receiver.pending:
            await out.write(receiver.take())
        if not receiver.seen_file:
            raise InvalidRequest(
                "No file in the upload: send it as the 'file' field.", param="file"
            )
        if accept is not None:
            accept(upload)
    return upload
