"""Line protocols of streaming answers: server-sent events and newline-delimited JSON.

Both read the lines of ``httpx.Response.aiter_lines()`` (line endings already removed).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

from relay_core.providers._http import CallContext


@dataclass(frozen=True)
class SSEEvent:
    """One dispatched event: its ``data:`` lines joined by newlines, and its ``event:`` name."""

    data: str
    event: str | None = None


async def sse_events(lines: AsyncIterable[str]) -> AsyncIterator[SSEEvent]:
    """Server-sent events as the WHATWG spec frames them.

    A blank line dispatches the event; ``:`` lines are comments (OpenRouter's keep-alives);
    ``id:`` and ``retry:`` are ignored; an event with no ``data:`` is not dispatched. A last
    event not followed by a blank line is still dispatched when the stream ends.
    """
    event: str | None = None
    data: list[str] = []
    async for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield SSEEvent("\n".join(data), event)
            event, data = None, []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
    if data:
        yield SSEEvent("\n".join(data), event)


async def ndjson_objects(lines: AsyncIterable[str], ctx: CallContext) -> AsyncIterator[Any]:
    """One decoded JSON value (scrubbed of the key) per non-blank line; a line that is not
    JSON is malformed."""
    async for line in lines:
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise ctx.malformed("a stream line is not JSON", line) from None
        yield ctx.scrub(value)


def decode_event(event: SSEEvent, ctx: CallContext) -> Any:
    """An SSE event's data as JSON (scrubbed of the key); anything else is malformed."""
    try:
        return ctx.scrub(orjson.loads(event.data))
    except orjson.JSONDecodeError:
        raise ctx.malformed("a stream event is not JSON", event.data) from None
