"""The pieces behind streaming, affinity and usage, against the real Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from relay_core.affinity import prefer_pinned
from relay_core.catalogue.models import ModelConfig, ProviderConfig
from relay_core.dispatch.envelope import Candidate, Envelope, Reply
from relay_core.dispatch.streaming import (
    CHUNK,
    DONE,
    ERROR,
    MODEL,
    PROVIDER,
    ChunkShape,
    RedisStreams,
    Relay,
    Written,
    cancel_key,
    stream_key,
)
from relay_core.errors import RateLimited, RelayError, UpstreamTimeout
from relay_core.events import CallRecord
from relay_core.normalize import merge_style
from relay_core.providers.base import RateLimitFeedback
from relay_core.routing.ranking import LiveState
from relay_core.routing.targets import Target
from relay_core.schemas.chat import ChatCompletionChunk, ChatCompletionRequest, Message
from relay_core.usage import UsageSink, read_usage
from tests.support.farm import REDIS_URL, require_redis

pytestmark = pytest.mark.integration


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    require_redis()
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
def prefix(redis: Redis) -> str:
    return f"rt{uuid.uuid4().hex[:10]}"


def request(**extra: object) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra}
    )


def envelope(**request_extra: object) -> Envelope:
    return Envelope(
        id=f"chatcmpl-{uuid.uuid4().hex}",
        request=request(stream=True, **request_extra).model_dump(mode="json"),
        candidates=[Candidate(provider="p", model="p-m")],
        deadline=1e12,
        attempts=1,
    )


def chunk(content: str | None = None, finish: str | None = None) -> ChatCompletionChunk:
    delta = {} if content is None else {"content": content}
    return ChatCompletionChunk.model_validate(
        {"id": "up", "model": "up-model", "choices": [{"delta": delta, "finish_reason": finish}]}
    )


class Upstream:
    """A ChunkStream double: yields chunks, then raises ``fail`` if given."""

    def __init__(self, chunks: list[ChatCompletionChunk], fail: Exception | None = None):
        self.chunks = chunks
        self.fail = fail
        self.feedback = RateLimitFeedback()

    async def _gen(self) -> AsyncIterator[ChatCompletionChunk]:
        for c in self.chunks:
            yield c
        if self.fail is not None:
            raise self.fail

    def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        return self._gen()


async def read_entries(redis: Redis, key: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
    found: Any = await redis.xrange(key)
    return [(i, f) for i, f in found]


def test_chunks_are_written_in_openai_shape_under_relays_id_and_model() -> None:
    shape = ChunkShape("chatcmpl-x", "p-m", include_usage=False, created=7)
    data = orjson.loads(shape.encode(chunk("hi")) or b"")
    assert data == {
        "id": "chatcmpl-x",
        "object": "chat.completion.chunk",
        "created": 7,
        "model": "p-m",
        "choices": [
            {"index": 0, "delta": {"content": "hi"}, "logprobs": None, "finish_reason": None}
        ],
    }
    usage_chunk = ChatCompletionChunk(id="u", model="m", choices=[], usage={"prompt_tokens": 1})
    assert shape.encode(usage_chunk) is None  # not asked for
    with_usage = ChunkShape("chatcmpl-x", "p-m", include_usage=True, created=7)
    assert orjson.loads(with_usage.encode(chunk("hi")) or b"")["usage"] is None
    assert orjson.loads(with_usage.encode(usage_chunk) or b"")["usage"]["prompt_tokens"] == 1


async def test_a_relay_writes_chunks_then_the_hub_ends_the_stream(
    redis: Redis, prefix: str
) -> None:
    hub = RedisStreams(redis, prefix)
    env = envelope()
    relay = Relay(hub.open(env.id), env, ("p", "p-m"), request(stream=True), normalize=False)
    result = await relay.run(Upstream([chunk("a"), chunk("b"), chunk(finish="stop")]), 0.0)
    await hub.finish(env.id, relay.reply(result.estimated_usage(relay.request), 0.0, 1.0))
    entries = await read_entries(redis, stream_key(prefix, env.id))
    assert [i for i, _ in entries][:3] == [b"0-1", b"0-2", b"0-3"]
    first = entries[0][1]
    assert (first[PROVIDER], first[MODEL]) == (b"p", b"p-m")
    assert [orjson.loads(f[CHUNK])["id"] for _, f in entries[:3]] == [env.id] * 3
    assert Reply.model_validate_json(entries[-1][1][DONE]).ok
    assert 0 < await redis.ttl(stream_key(prefix, env.id)) <= 600
    assert result.written == 3 and result.chars == 2


async def test_an_error_after_the_first_chunk_is_returned_not_raised(
    redis: Redis, prefix: str
) -> None:
    env = envelope()
    sink = RedisStreams(redis, prefix).open(env.id)
    relay = Relay(sink, env, ("p", "p-m"), request(stream=True), normalize=False)
    result = await relay.run(Upstream([chunk("a")], UpstreamTimeout("slow")), 0.0)
    assert isinstance(result.error, UpstreamTimeout) and result.written == 1
    # Before anything was written, the same error propagates: the caller fails over.
    env2 = envelope()
    relay2 = Relay(
        RedisStreams(redis, prefix).open(env2.id), env2, ("p", "p-m"), request(), normalize=False
    )
    with pytest.raises(UpstreamTimeout):
        await relay2.run(Upstream([], UpstreamTimeout("slow")), 0.0)


async def test_a_cancelled_stream_stops_and_a_taken_one_is_left_alone(
    redis: Redis, prefix: str
) -> None:
    env = envelope()
    hub = RedisStreams(redis, prefix)
    first = hub.open(env.id)
    assert await first.write(b"{}") is Written.ok
    # A second writer (a redelivered task) finds the stream taken and writes nothing.
    second = hub.open(env.id)
    assert await second.write(b"{}") is Written.taken
    await redis.set(cancel_key(prefix, env.id), b"1")
    assert await first.write(b"{}") is Written.cancelled  # and nothing is written
    assert await redis.xlen(stream_key(prefix, env.id)) == 1
    # The client left: the stream is deleted, not ended (nobody would read it).
    await hub.finish(env.id, Reply(id=env.id, ok=False))
    assert not await redis.exists(stream_key(prefix, env.id))


async def test_a_stream_that_is_not_cancelled_ends_with_its_error(
    redis: Redis, prefix: str
) -> None:
    env = envelope()
    hub = RedisStreams(redis, prefix)
    assert await hub.open(env.id).write(b"{}") is Written.ok
    await hub.finish(env.id, Reply(id=env.id, ok=False))
    assert ERROR in (await read_entries(redis, stream_key(prefix, env.id)))[-1][1]
    assert 0 < await redis.ttl(stream_key(prefix, env.id)) <= 600


def call(ok: bool = True, error: type[RelayError] | None = None, owner: str = "k1") -> CallRecord:
    return CallRecord(
        provider="or",
        model="meta/llama:free|x",
        owner=owner,
        kind="interactive",
        ok=ok,
        error=error,
        latency_s=0.1,
        queue_wait_s=0.0,
        prompt_tokens=10,
        completion_tokens=5 if ok else 0,
        at=1_700_000_000.0,  # 2023-11-14 UTC
    )


async def test_usage_counters_round_trip_odd_model_ids(redis: Redis, prefix: str) -> None:
    sink = UsageSink(redis, prefix, retention_days=1, flush_s=60)
    for ok, error in ((True, None), (False, RateLimited), (False, UpstreamTimeout)):
        await sink.call_finished(call(ok, error))
    assert await read_usage(redis, prefix, "k1") == []  # gathered, not written yet
    await sink.aclose()
    (row,) = await read_usage(redis, prefix, "k1")
    assert (row.date, row.provider, row.model) == ("2023-11-14", "or", "meta/llama:free|x")
    assert (row.requests, row.errors, row.rate_limited) == (3, 2, 1)
    assert (row.prompt_tokens, row.completion_tokens, row.total_tokens) == (30, 5, 35)
    assert await read_usage(redis, prefix, "k2") == []
    assert 0 < await redis.ttl(f"{prefix}:usage:k1:2023-11-14") <= 86_400


async def test_usage_counts_are_written_on_their_own_and_survive_a_failed_write(
    redis: Redis, prefix: str
) -> None:
    down = Redis.from_url("redis://127.0.0.1:1/0")  # nothing listens there
    sink = UsageSink(down, prefix, retention_days=1, flush_s=0.01)
    await sink.call_finished(call())
    with pytest.raises(RedisConnectionError):
        await sink.flush()
    sink.redis = redis  # Redis is back: the next flush writes what the failed one held
    await sink.call_finished(call(owner="k2"))
    deadline = time.monotonic() + 5
    while len(await read_usage(redis, prefix, "k1") + await read_usage(redis, prefix, "k2")) < 2:
        assert time.monotonic() < deadline  # the timer's flush, without any call to flush()
        await asyncio.sleep(0.01)
    await sink.aclose()
    await down.aclose()
    (mine,) = await read_usage(redis, prefix, "k1")
    (theirs,) = await read_usage(redis, prefix, "k2")
    assert (mine.requests, mine.prompt_tokens, theirs.requests) == (1, 10, 1)


def targets() -> list[Target]:
    models = [ModelConfig(id=f"{n}-m") for n in "abc"]
    return [
        Target(ProviderConfig(name=n, api="openai", base_url="http://x", models=[m]), m)
        for n, m in zip("abc", models, strict=True)
    ]


def test_the_pin_goes_first_only_when_it_can_serve_now() -> None:
    a, b, c = targets()
    ranked = [a, b, c]
    assert prefer_pinned(ranked, {}, "c/c-m") == [c, a, b]
    assert prefer_pinned(ranked, {"c/c-m": LiveState(wait_s=2.0)}, "c/c-m") == ranked
    assert prefer_pinned(ranked, {"c/c-m": LiveState(breaker_open=True)}, "c/c-m") == ranked
    assert prefer_pinned(ranked, {}, "gone/x") == ranked
    assert prefer_pinned(ranked, {}, None) == ranked


def test_the_style_directive_is_merged_once() -> None:
    directive = "Answer in plain English."
    bare = request()
    merged = merge_style(bare, directive)
    assert [m.role for m in merged.messages] == ["system", "user"]
    assert merged.messages[0].content == directive
    with_system = request(
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    )
    once = merge_style(with_system, directive)
    assert [m.role for m in once.messages] == ["system", "user"]
    assert once.messages[0].content == f"Be brief.\n\n{directive}"
    assert merge_style(once, directive) == once  # never twice
    assert merge_style(with_system, "  ") is with_system
    parts = request(
        messages=[
            {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
            {"role": "user", "content": "hi"},
        ]
    )
    assert merge_style(parts, directive).messages[0].text() == f"Be brief.{directive}"
    assert isinstance(merged.messages[0], Message)
