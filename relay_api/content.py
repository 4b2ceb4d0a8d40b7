"""A stored file as an HTTP response, streamed from storage a chunk at a time whatever its size
and backend: whole (200), one byte range (206 with ``Content-Range``), several ranges (206
``multipart/byteranges``, each part read by its own ranged read), or, for ``HEAD``, the headers
alone (nothing read). Every answer says ``Accept-Ranges: bytes``; a ``Range`` that starts past
the end is a 416 (:mod:`relay_api.ranges`).

``If-Range`` asks for the range only if the file is unchanged; Relay's stored files never
change under their id but it sends no validator to compare, so a request with ``If-Range`` is
answered whole, which RFC 9110 §13.1.5 allows.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from relay_api.ranges import byte_ranges
from relay_core.storage.base import ObjectStorage


@dataclass(frozen=True)
class Stored:
    """Where a file's bytes are and how to label them."""

    storage: ObjectStorage
    name: str
    size: int
    media_type: str


def _part_head(boundary: str, media_type: str, start: int, end: int, size: int) -> bytes:
    return (
        f"--{boundary}\r\nContent-Type: {media_type}\r\n"
        f"Content-Range: bytes {start}-{end - 1}/{size}\r\n\r\n"
    ).encode("latin-1")


async def _parts(
    file: Stored, ranges: Sequence[tuple[int, int]], boundary: str
) -> AsyncIterator[bytes]:
    for start, end in ranges:
        yield _part_head(boundary, file.media_type, start, end, file.size)
        async for chunk in file.storage.stream(file.name, start, end):
            yield chunk
        yield b"\r\n"
    yield f"--{boundary}--".encode("latin-1")


def _multipart_length(file: Stored, ranges: Sequence[tuple[int, int]], boundary: str) -> int:
    heads = sum(len(_part_head(boundary, file.media_type, s, e, file.size)) for s, e in ranges)
    return heads + sum(e - s + 2 for s, e in ranges) + len(f"--{boundary}--")


def _answer(
    request: Request,
    status: int,
    body: Callable[[], AsyncIterator[bytes]],
    headers: dict[str, str],
    media: str,
) -> Response:
    """The response; a HEAD's has the same headers and reads nothing from storage."""
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=media)
    return StreamingResponse(body(), status_code=status, headers=headers, media_type=media)


def stored_response(request: Request, file: Stored, headers: Mapping[str, str]) -> Response:
    """``file`` as the answer to ``request`` (a GET or HEAD), with ``headers`` besides."""
    out = {**headers, "accept-ranges": "bytes", "content-length": str(file.size)}
    header = request.headers.get("range")
    ranges = (
        [] if header is None or "if-range" in request.headers else byte_ranges(header, file.size)
    )
    if not ranges:
        return _answer(request, 200, partial(file.storage.stream, file.name), out, file.media_type)
    if len(ranges) == 1:
        start, end = ranges[0]
        out["content-range"] = f"bytes {start}-{end - 1}/{file.size}"
        out["content-length"] = str(end - start)
        body = partial(file.storage.stream, file.name, start, end)
        return _answer(request, 206, body, out, file.media_type)
    boundary = secrets.token_hex(13)
    out["content-length"] = str(_multipart_length(file, ranges, boundary))
    media = f"multipart/byteranges; boundary={boundary}"
    return _answer(request, 206, partial(_parts, file, ranges, boundary), out, media)
