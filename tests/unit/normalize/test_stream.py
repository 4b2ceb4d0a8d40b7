"""The normalizer on streams gives what it gives whole answers, however the text is cut."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay_core.normalize import ChunkNormalizer, Normalize, normalize_text
from relay_core.normalize.stream import JsonStream, ProseStream
from relay_core.schemas.chat import ChatCompletionChunk

ANSWERS = [
    "Sure thing! Paris is the capital.",
    "Sure, here's how:\n\n```bash\nSure! echo hi\n\n\nls\n```\nDone.",
    "Of course! Certainly, the answer is 4.",
    "As an AI language model, I cannot browse.",
    "Certainly not: that would lose data.",
    "```py\nprint('open block')\n",
    "````md\n```py\nx\n```\n",
    "Sure!",
    "Okay so. Then we start.",
    "I'd be happy to help! First step: breathe.",
    "plain answer without anything special",
    "",
]
JSON_ANSWERS = [
    '{"a": 1}',
    '```json\n{"a": 1}\n```',
    'Here you go:\n```json\n{"a": [1, 2]}\n```\nHope it helps!',
    "```\n[1, 2, 3]\n```",
    '{\n  "code": "x"\n}\n',
    "no json here at all",
]


def cut(text: str, points: list[int]) -> list[str]:
    bounds = sorted({p % (len(text) + 1) for p in points} | {0, len(text)})
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def run(stream: ProseStream | JsonStream, pieces: list[str]) -> str:
    return "".join(stream.feed(p) for p in pieces) + stream.flush()


@given(st.sampled_from(ANSWERS), st.lists(st.integers(0, 200), max_size=12))
def test_prose_stream_matches_the_whole_answer(text: str, points: list[int]) -> None:
    assert run(ProseStream(), cut(text, points)) == normalize_text(text, Normalize(True))


@given(st.sampled_from(JSON_ANSWERS), st.lists(st.integers(0, 200), max_size=12))
def test_json_stream_strips_fences_however_it_is_cut(text: str, points: list[int]) -> None:
    out = run(JsonStream(), cut(text, points))
    assert out.strip() == normalize_text(text, Normalize(json=True)).strip()


def test_plain_text_is_not_held_back() -> None:
    stream = ProseStream()
    assert stream.feed("sim:p/m: hello") == "sim:p/m: hello"
    assert stream.feed(" world") == " world"
    assert stream.flush() == ""


def test_a_possible_preamble_is_held_then_dropped() -> None:
    stream = ProseStream()
    assert stream.feed("Sur") == ""
    assert stream.feed("e thing!") == ""
    assert stream.feed(" Paris") == "Paris"


def chunk(
    content: str | None = None, finish: str | None = None, role: bool = False
) -> dict[str, Any]:
    delta: dict[str, object] = {}
    if role:
        delta["role"] = "assistant"
    if content is not None:
        delta["content"] = content
    return {"index": 0, "delta": delta, "finish_reason": finish}


def chunks(*choices: dict[str, Any]) -> list[ChatCompletionChunk]:
    return [ChatCompletionChunk(id="c", model="m", choices=[c]) for c in choices]


def test_chunk_normalizer_drops_held_chunks_and_closes_fences_before_finish() -> None:
    norm = ChunkNormalizer(Normalize(preambles=True))
    stream = chunks(
        chunk("", role=True),
        chunk("Sure! "),
        chunk("```py\nx = 1\n"),
        chunk(finish="length"),
    )
    out = [c for s in stream for c in norm.chunk(s)]
    deltas = [(c.choices[0].delta.content, c.choices[0].finish_reason) for c in out]
    assert deltas == [("", None), ("```py\nx = 1\n", None), ("```", None), (None, "length")]
    assert out[0].choices[0].delta.role == "assistant"


def test_usage_chunks_and_inactive_normalizers_pass_through() -> None:
    usage = ChatCompletionChunk(id="c", model="m", choices=[], usage={"prompt_tokens": 1})
    assert ChunkNormalizer(Normalize(preambles=True)).chunk(usage) == [usage]
    (one,) = chunks(chunk("Sure! x"))
    assert ChunkNormalizer(Normalize()).chunk(one) == [one]


@pytest.mark.parametrize("size", [1, 3, 7])
def test_json_chunks_lose_their_fence(size: int) -> None:
    text = 'Here:\n```json\n{"a": 1}\n```\nBye'
    norm = ChunkNormalizer(Normalize(json=True))
    pieces = [text[i : i + size] for i in range(0, len(text), size)]
    stream = chunks(chunk("", role=True), *(chunk(p) for p in pieces), chunk(finish="stop"))
    out = "".join(c.choices[0].delta.content or "" for s in stream for c in norm.chunk(s))
    assert out.strip() == '{"a": 1}'
