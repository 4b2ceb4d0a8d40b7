from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from relay_core.errors import UpstreamMalformed
from relay_core.providers._http import CallContext
from relay_core.providers._lines import SSEEvent, ndjson_objects, sse_events

CTX = CallContext("p", "m")


async def _lines(*lines: str) -> AsyncIterator[str]:
    for line in lines:
        yield line


async def _events(*lines: str) -> list[SSEEvent]:
    return [event async for event in sse_events(_lines(*lines))]


async def test_sse_events_with_names_comments_and_multiline_data():
    events = await _events(
        ": ping",
        "event: message_start",
        'data: {"a": 1}',
        "",
        "id: 7",
        "retry: 100",
        "data: line one",
        "data:line two",
        "",
        "",
        "event: message_stop",
        "data: {}",
    )
    assert events == [
        SSEEvent('{"a": 1}', "message_start"),
        SSEEvent("line one\nline two", None),
        SSEEvent("{}", "message_stop"),  # dispatched at the end without a blank line
    ]


async def test_sse_event_without_data_is_not_dispatched():
    assert await _events("event: ping", "", "data: [DONE]", "") == [SSEEvent("[DONE]")]


async def test_sse_keeps_spaces_after_the_first():
    assert await _events("data:   indented", "") == [SSEEvent("  indented")]


async def test_ndjson_skips_blank_lines_and_refuses_garbage():
    values = [v async for v in ndjson_objects(_lines('{"a": 1}', "", "  ", "[2]"), CTX)]
    assert values == [{"a": 1}, [2]]
    with pytest.raises(UpstreamMalformed) as caught:
        _ = [v async for v in ndjson_objects(_lines('{"a": 1}', "{oops"), CTX)]
    assert caught.value.provider == "p"
    assert caught.value.upstream_body == "{oops"
