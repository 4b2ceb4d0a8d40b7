"""The exact cache's store (fakeredis): what is kept, per owner or shared, and the counts."""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest

from relay_core.answers.cache import AnswerCache, CacheKeys, hit_reply, read_stats, storable
from relay_core.answers.repair import AnswerCheck, CheckAction
from relay_core.dispatch.envelope import Reply
from relay_core.errors import UpstreamUnavailable
from relay_core.schemas.chat import ChatCompletion
from relay_core.usage import read_usage


def reply(content: str | None = "4", finish: str = "stop", **fields: Any) -> Reply:
    body = ChatCompletion.model_validate(
        {
            "model": "m",
            "choices": [{"message": {"content": content}, "finish_reason": finish}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
        }
    )
    defaults: dict[str, Any] = {"id": "r", "ok": True, "completion": body, "provider": "p"}
    return Reply(**{**defaults, "model": "m", **fields})


INVALID = AnswerCheck(
    provider="p", model="m", attempt=1, valid=False, action=CheckAction.failover, error="x"
)


@pytest.mark.parametrize(
    ("case", "kept"),
    [
        (reply(), True),
        (reply(content=""), False),  # empty
        (reply(content=None), False),
        (reply(finish="length"), False),  # truncated
        (reply(finish="content_filter"), False),
        (reply(ok=False, error=UpstreamUnavailable("x").to_info(), completion=None), False),
        (reply(checks=[INVALID]), False),  # failed validation
        (reply(cached=True), False),  # already a cached answer
    ],
)
def test_only_whole_successful_answers_are_kept(case: Reply, kept: bool) -> None:
    assert storable(case) is kept


@pytest.fixture
def redis() -> fakeredis.FakeAsyncRedis:
    return fakeredis.FakeAsyncRedis()


async def test_entries_are_scoped_per_owner_unless_shared(redis: fakeredis.FakeAsyncRedis) -> None:
    cache = AnswerCache(redis, "t", shared=False, retention_s=60)
    assert await cache.put("alice", CacheKeys("d1"), reply(), 60, "interactive")
    assert await cache.get("bob", CacheKeys("d1"), "interactive") is None
    found = await cache.get("alice", CacheKeys("d1"), "interactive")
    assert found is not None and found.answer.completion.choices[0].message.content == "4"
    assert 0 < await redis.ttl(cache.key("alice", "d1")) <= 60
    shared = AnswerCache(redis, "t", shared=True, retention_s=60)
    assert await shared.put("alice", CacheKeys("d2"), reply(), 60, "interactive")
    assert await shared.get("bob", CacheKeys("d2"), "interactive") is not None


async def test_hits_are_counted_and_cost_no_token(redis: fakeredis.FakeAsyncRedis) -> None:
    cache = AnswerCache(redis, "t", shared=False, retention_s=60)
    assert not await cache.put("alice", CacheKeys("d"), reply(finish="length"), 60, "batch")
    await cache.put("alice", CacheKeys("d"), reply(), 60, "batch")
    found = await cache.get("alice", CacheKeys("d"), "batch")
    await cache.get("alice", CacheKeys("other"), "batch")
    assert await read_stats(redis, "t") == {
        ("batch", "store"): 1,
        ("batch", "hit"): 1,
        ("batch", "miss"): 1,
    }
    (row,) = await read_usage(redis, "t", "alice")
    assert (row.provider, row.cache_hits, row.cached_tokens) == ("p", 1, 6)
    assert (row.requests, row.prompt_tokens, row.completion_tokens) == (0, 0, 0)
    assert found is not None
    hit = hit_reply("req-2", found.answer)
    assert (hit.cached, hit.attempts, hit.id) == (True, 0, "req-2")


async def test_a_near_duplicate_key_finds_the_answer_stored_with_it(
    redis: fakeredis.FakeAsyncRedis,
) -> None:
    cache = AnswerCache(redis, "t", shared=False, retention_s=60)
    await cache.put("alice", CacheKeys("e1", near="n1"), reply(), 60, "interactive")
    exact = await cache.get("alice", CacheKeys("e1", near="n1"), "interactive")
    near = await cache.get("alice", CacheKeys("e2", near="n1"), "interactive")
    assert exact is not None and exact.match == "exact"
    assert near is not None and near.match == "near"
    assert await cache.get("alice", CacheKeys("e2"), "interactive") is None  # near off
    stats = await read_stats(redis, "t")
    assert stats[("interactive", "hit")] == 2 and stats[("interactive", "near_hit")] == 1
    assert stats[("interactive", "miss")] == 1
