"""A stream scrubbed of the key when the key is split across chunks, in every text field."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from relay_core.providers._stream import OpenedStream
from relay_core.providers.base import RateLimitFeedback
from relay_core.schemas.chat import ChatCompletionChunk

KEY = "sk-split-0123456789abcdef"


def chunk(delta: dict[str, object], finish: str | None = None) -> ChatCompletionChunk:
    return ChatCompletionChunk.model_validate(
        {
            "id": "c",
            "model": "m",
            "created": 1,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
    )


def relayed(
    pieces: list[ChatCompletionChunk], secret: str | None = KEY
) -> list[ChatCompletionChunk]:
    async def rest() -> AsyncIterator[ChatCompletionChunk]:
        for piece in pieces[1:]:
            yield piece

    async def run() -> list[ChatCompletionChunk]:
        return [c async for c in OpenedStream(RateLimitFeedback(), pieces[0], rest(), secret)]

    return asyncio.run(run())


def joined(chunks: list[ChatCompletionChunk]) -> tuple[str, str, str]:
    content = args = reasoning = ""
    for c in chunks:
        for choice in c.choices:
            content += choice.delta.content or ""
            reasoning += (choice.delta.model_extra or {}).get("reasoning_content", "")
            for call in choice.delta.tool_calls or ():
                args += (call.function or {}).get("arguments", "")
    return content, args, reasoning


def split_three_ways(text: str) -> list[str]:
    at = text.index(KEY)
    return [text[: at + 5], text[at + 5 : at + 15], text[at + 15 :]]


def test_a_key_split_in_content_arguments_and_extras_is_scrubbed() -> None:
    text = f"my key is {KEY}, yes"
    pieces = [
        chunk(
            {
                "content": part,
                "reasoning_content": part,
                "tool_calls": [{"index": 0, "function": {"arguments": part}}],
            }
        )
        for part in split_three_ways(text)
    ]
    out = relayed([*pieces, chunk({}, finish="stop")])
    assert joined(out) == (text.replace(KEY, "[redacted]"),) * 3
    assert not [c for c in out if KEY[:8] in c.model_dump_json()]


def test_what_is_held_when_the_stream_stops_unfinished_is_sent_at_the_end() -> None:
    out = relayed([chunk({"content": "ends with sk-sp"})])
    assert [c.choices[0].delta.content for c in out] == ["ends with ", "sk-sp"]


def test_without_a_key_chunks_pass_as_they_are() -> None:
    out = relayed([chunk({"content": f"{KEY[:5]}"}), chunk({"content": KEY[5:]})], secret=None)
    assert joined(out)[0] == KEY
