"""The batch scripts against the real Redis: claim (pacing, window), record (once per
custom_id), stale (the sweeper's take), transitions, and a line's books around a visit."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from relay_core.batch.lines import LineRef
from relay_core.batch.models import BatchStatus
from relay_core.batch.run.books import LineBooks
from relay_core.batch.run.feeder import Room
from relay_core.batch.run.outputs import split
from relay_core.batch.run.worker import BatchWorker, Shared
from relay_core.batch.store.record import decode
from relay_core.batch.store.store import BatchStore, NewBatch
from relay_core.breaker import Breaker
from relay_core.breaker import RedisBackend as BreakerRedis
from relay_core.dispatch.envelope import Candidate, Envelope, Kind, Reply
from relay_core.dispatch.outcome import Done, Forward, Outcome
from relay_core.dispatch.priority import LEAD_LATELY_S, LEAD_S, Gate, Priority
from relay_core.errors import RateLimited, RelayError, UpstreamModelNotFound, UpstreamUnavailable
from relay_core.limits import Limiter
from relay_core.limits import RedisBackend as LimitsRedis
from relay_core.schemas.chat import ChatCompletion
from relay_core.settings import Settings
from tests.support.farm import REDIS_URL

pytestmark = pytest.mark.integration


@pytest.fixture
async def store() -> AsyncIterator[BatchStore]:
    redis = Redis.from_url(REDIS_URL)
    prefix = f"bt{uuid.uuid4().hex[:10]}"
    try:
        yield BatchStore(redis, prefix)
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


async def result(store: BatchStore, batch_id: str, custom_id: str) -> bytes:
    stored = await store.redis.hget(store.keys(batch_id).results, custom_id)
    assert isinstance(stored, bytes)
    return stored


async def running(store: BatchStore, lines: int) -> str:
    batch = await store.create(
        NewBatch(
            owner="o",
            endpoint="/v1/chat/completions",
            input_file_id="file-x",
            completion_window="24h",
            window_s=3600,
        )
    )
    refs = [LineRef(i * 10, 10, 0, f"c{i}").encode() for i in range(lines)]
    await store.redis.rpush(store.keys(batch.id).lines, *refs)
    await store.redis.hset(store.keys(batch.id).meta, "total", lines)
    assert await store.transition(batch.id, BatchStatus.in_progress, [BatchStatus.validating])
    return batch.id


async def claim(store: BatchStore, batch_id: str, **args: Any) -> tuple[int, int]:
    claimed = await store.claim(batch_id, **args)
    return claimed.first, claimed.count


async def test_claim_paces_bounds_and_advances(store: BatchStore) -> None:
    batch_id = await running(store, 100)
    now = time.time()
    args: dict[str, Any] = {"rate": 10.0, "burst": 5.0, "window": 8, "max_n": 100, "due": now + 60}
    assert await claim(store, batch_id, now=now, **args) == (0, 5)  # the burst
    assert await claim(store, batch_id, now=now, **args) == (5, 0)  # bucket empty
    assert await claim(store, batch_id, now=now + 0.2, **args) == (5, 2)  # 0.2 s at 10/s
    # The window: 7 in flight of 8 allowed, however full the bucket.
    assert await claim(store, batch_id, now=now + 10, **args) == (7, 1)
    assert await store.redis.zcard(store.keys(batch_id).inflight) == 8
    refs = await store.refs(batch_id, [0, 1, 7])
    assert [(i, r.custom_id) for i, r in refs] == [(0, "c0"), (1, "c1"), (7, "c7")]
    await store.transition(batch_id, BatchStatus.cancelling, [BatchStatus.in_progress])
    await store.redis.delete(store.keys(batch_id).inflight)
    assert await claim(store, batch_id, now=now + 20, **args) == (0, 0)  # not in_progress


async def test_each_provider_holds_only_its_share_of_the_window(store: BatchStore) -> None:
    batch_id = await running(store, 100)
    now = time.time()
    args: dict[str, Any] = {"rate": 100.0, "burst": 100.0, "window": 8, "max_n": 100}
    shares = {"hung": 2, "ok": 6}
    first = await store.claim(batch_id, now=now, due=now + 60, shares=shares, **args)
    assert (first.first, first.count, first.room) == (0, 8, {"hung": 2, "ok": 6})
    await store.assign(batch_id, [(i, "hung" if i < 2 else "ok") for i in range(8)])
    # The hung provider never answers; the other answers all six of its lines.
    for i in range(2, 8):
        await store.record(batch_id, custom_id=f"c{i}", index=i, line=b"o{}", ok=True)
    again = await store.claim(batch_id, now=now + 1, due=now + 60, shares=shares, **args)
    assert (again.first, again.count, again.room) == (8, 6, {"hung": 0, "ok": 6})
    # A line re-sent to another provider moves from the old one's count to the new one's.
    await store.assign(batch_id, [(0, "ok")])
    flying = await store.redis.hgetall(store.keys(batch_id).flying)
    assert decode(flying) == {"hung": "1", "ok": "1"}
    # Lines handed on to it (it always has a token) put it over its share: swamped.
    await store.assign(batch_id, [(i, "hung") for i in range(8, 12)])
    over = await store.claim(batch_id, now=now + 1.5, due=now + 60, shares=shares, **args)
    assert over.room["hung"] == 2 - 5
    assert Room.of(over.room, shares).swamped == {"hung"}
    # The window alone (no shares) still counts every line in flight, the hung ones too.
    alone = await store.claim(batch_id, now=now + 2, due=now + 60, **args)
    assert alone.count == 0 and alone.room == {}


async def test_orphaned_lines_are_taken_once_and_counted(store: BatchStore) -> None:
    batch_id = await running(store, 4)
    now = time.time()
    await store.claim(batch_id, now=now, rate=10, burst=4, window=4, max_n=4, due=now + 180)
    await store.record(batch_id, custom_id="c1", index=1, line=b"o{}", ok=True)
    # The dead worker held lines 0, 1 (recorded since) and 2: 0 and 2 go again, now.
    assert await store.orphans(batch_id, [0, 1, 2], due=now + 180) == [0, 2]
    await store.touch(batch_id, 3, now - 1)
    assert await store.stale(batch_id, now=now, due=now + 180, max_n=10) == [3]
    batch = await store.batch(batch_id)
    assert batch is not None and batch.resent == {"worker_died": 2, "overdue": 1}
    assert (await store.progress(batch)).resent == {"worker_died": 2, "overdue": 1}


async def test_record_counts_each_custom_id_once(store: BatchStore) -> None:
    batch_id = await running(store, 2)
    await store.claim(batch_id, now=time.time(), rate=10, burst=2, window=2, max_n=2, due=0)
    first = await store.record(
        batch_id, custom_id="c0", index=0, line=b'o{"a":1}', ok=True, tokens=(3, 4), provider="p"
    )
    again = await store.record(
        batch_id, custom_id="c0", index=0, line=b'e{"a":2}', ok=False, provider="p"
    )
    last = await store.record(
        batch_id, custom_id="c1", index=1, line=b'e{"b":1}', ok=False, provider="q"
    )
    batch = await store.batch(batch_id)
    assert batch is not None
    assert (first.outcome, first.finished) == (1, False)
    assert (again.outcome, again.finished) == (0, False)
    assert (last.outcome, last.finished) == (1, True)
    assert (batch.completed, batch.failed) == (1, 1)
    assert (batch.fields["input_tokens"], batch.fields["output_tokens"]) == ("3", "4")
    assert split(await result(store, batch_id, "c0")) == (
        True,
        b'{"a":1}',
    )  # the first record stands
    assert await store.redis.zcard(store.keys(batch_id).inflight) == 0
    progress = await store.progress(batch)
    assert progress.providers["p"].completed == 1 and progress.providers["q"].failed == 1
    await store.transition(batch_id, BatchStatus.finalizing, [BatchStatus.in_progress])
    late = await store.record(batch_id, custom_id="new", index=5, line=b"o{}", ok=True)
    assert late.outcome == -1


async def test_stale_takes_overdue_lines_once(store: BatchStore) -> None:
    batch_id = await running(store, 3)
    now = time.time()
    await store.claim(batch_id, now=now, rate=10, burst=3, window=3, max_n=3, due=now + 5)
    await store.touch(batch_id, 1, now - 1)  # its task vanished
    assert await store.stale(batch_id, now=now, due=now + 5, max_n=10) == [1]
    assert await store.stale(batch_id, now=now, due=now + 5, max_n=10) == []
    await store.touch(batch_id, 99, now - 1)  # touch never adds a line that is not in flight
    assert await store.redis.zcard(store.keys(batch_id).inflight) == 3


async def no_wait(candidate: Candidate) -> float:
    return 0.0


def books_for(store: BatchStore) -> LineBooks:
    gate = Gate(Priority(store.redis, store.prefix, 3.0), no_wait)
    return LineBooks(store, gate, line_timeout_s=60, hold_s=2, on_finished=lambda: None)


def _env(batch_id: str, custom_id: str = "c0", index: int = 0) -> Envelope:
    return Envelope(
        id=f"{batch_id}:{index}:n",
        request={"model": "m", "messages": [{"role": "user", "content": "x"}]},
        candidates=[Candidate(provider="p", model="m")],
        kind=Kind.batch,
        deadline=time.time() + 60,
        batch_id=batch_id,
        custom_id=custom_id,
    )


def _ok(env: Envelope) -> Outcome:
    usage = {"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7}
    completion = ChatCompletion.model_validate({"model": "m", "choices": [], "usage": usage})
    return Done(Reply(id=env.id, ok=True, completion=completion, provider="p", model="m"))


async def test_a_line_run_twice_at_once_is_recorded_once(store: BatchStore) -> None:
    batch_id = await running(store, 1)
    books = books_for(store)
    calls = 0
    gate = asyncio.Event()

    async def visit(env: Envelope) -> Outcome:
        nonlocal calls
        calls += 1
        await gate.wait()
        return _ok(env)

    both = asyncio.gather(books.handle(_env(batch_id), visit), books.handle(_env(batch_id), visit))
    while calls < 2:
        await asyncio.sleep(0)
    gate.set()
    await both
    redelivered = await books.handle(_env(batch_id), visit)  # after the record: not run at all
    batch = await store.batch(batch_id)
    assert batch is not None and calls == 2
    assert (batch.completed, batch.failed, batch.fields["output_tokens"]) == (1, 0, "5")
    assert await store.redis.hlen(store.keys(batch_id).results) == 1
    assert isinstance(redelivered, Done) and not redelivered.reply.ok


async def test_cancelled_lines_are_recorded_without_running(store: BatchStore) -> None:
    batch_id = await running(store, 1)
    await store.transition(batch_id, BatchStatus.cancelling, [BatchStatus.in_progress])
    books = books_for(store)

    async def visit(env: Envelope) -> Outcome:
        raise AssertionError("a cancelled batch's line must not run")

    await books.handle(_env(batch_id), visit)
    is_output, line = split(await result(store, batch_id, "c0"))
    assert not is_output and b'"batch_cancelled"' in line


async def test_a_line_every_candidate_refuses_for_good_fails_now(store: BatchStore) -> None:
    from relay_core.dispatch.outcome import Forward

    batch_id = await running(store, 1)
    books = books_for(store)
    gone = UpstreamModelNotFound(
        "no such model",
        provider="p",
        model="m",
        upstream_status=404,
        upstream_body='{"error": {"code": "model_not_found"}}',
    )

    async def visit(env: Envelope) -> Outcome:
        return Forward(env.model_copy(update={"failures": [gone.to_info()]}), 2.0)

    outcome = await books.handle(_env(batch_id), visit)
    assert isinstance(outcome, Done)  # not handed back to a queue
    stored = await result(store, batch_id, "c0")
    assert b'"status_code":404' in stored and b'"model_not_found"' in stored


async def test_batch_lines_stand_aside_while_an_interactive_request_waits(
    store: BatchStore,
) -> None:
    priority = Priority(store.redis, store.prefix, mark_s=3.0)
    gate = Gate(priority, no_wait)
    cand = Candidate(provider="p", model="m")
    assert await gate.turn(cand, budget_s=1.0) == 0.0  # nobody waits: go now
    async with priority.interactive("chat-1", "p"):
        assert await priority.waiting("p") and not await priority.waiting("other")
        waited = await gate.turn(cand, budget_s=0.1)  # stands aside for the whole budget
        assert waited == pytest.approx(0.1)
    # The mark goes once the interactive request's visit ends (a background removal).
    deadline = time.monotonic() + 2
    while await priority.waiting("p"):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)


async def test_interactive_marks_expire_on_their_own(store: BatchStore) -> None:
    priority = Priority(store.redis, store.prefix, mark_s=0.2)
    await store.redis.zadd(priority.key("p"), {"died-mid-wait": time.time() + 0.05})
    assert await priority.waiting("p")
    deadline = time.monotonic() + 2
    while await priority.waiting("p"):  # a worker that died left it: it lapses by itself
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)


async def test_a_line_waits_for_its_token_at_the_gate_not_in_the_executor(
    store: BatchStore,
) -> None:
    token_at = time.time() + 0.6

    async def peek(candidate: Candidate) -> float:
        return max(0.0, token_at - time.time())

    gate = Gate(Priority(store.redis, store.prefix, 3.0), peek)
    waited = await gate.turn(Candidate(provider="p", model="m"), budget_s=2.0)
    # Woke up to its lead before the token, for the executor to reserve it and sleep the rest.
    assert 0.6 - LEAD_S < waited < 0.6
    assert gate.lead_s("p") == LEAD_S
    assert await gate.turn(Candidate(provider="p", model="m"), budget_s=2.0) == 0.0


async def test_with_chat_traffic_about_a_line_goes_only_once_the_token_is_there(
    store: BatchStore,
) -> None:
    token_at = 0.0

    async def peek(candidate: Candidate) -> float:
        return max(0.0, token_at - time.time())

    priority = Priority(store.redis, store.prefix, 3.0)
    async with priority.interactive("chat-1", "p"):
        pass  # came and went: it counts as traffic "lately" for a while
    deadline = time.monotonic() + 2
    while await priority.waiting("p"):  # its mark's removal runs in the background
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    assert await priority.state("p") == (False, True)
    token_at = time.time() + 0.3
    gate = Gate(priority, peek)
    waited = await gate.turn(Candidate(provider="p", model="m"), budget_s=2.0)
    assert waited >= 0.29 and time.time() >= token_at  # not early: the token was there
    assert gate.lead_s("p") == LEAD_LATELY_S  # and it reserves no further ahead than that


async def test_interactive_requests_mark_themselves_only_while_a_batch_is_about(
    store: BatchStore, tmp_path: Path
) -> None:
    settings = Settings(redis_url=REDIS_URL, key_prefix=store.prefix, storage_dir=tmp_path)
    shared = Shared(
        settings,
        [],
        Limiter.from_settings(settings, LimitsRedis(store.redis)),
        Breaker.from_settings(settings, BreakerRedis(store.redis)),
        "w",
    )
    worker = BatchWorker.build(shared, store.redis)
    env = Envelope(
        id="chatcmpl-1",
        request={"model": "m", "messages": [{"role": "user", "content": "x"}]},
        candidates=[Candidate(provider="p", model="m")],
        deadline=time.time() + 60,
    )
    seen: list[bool] = []

    async def visit(e: Envelope) -> Outcome:
        seen.append(await worker.priority.waiting(e.current.provider))
        return Done(Reply(id=e.id, ok=True))

    await worker.tick()  # no batch at all: nobody to stand aside for, so no mark
    await worker.interactive(env, visit)
    await running(store, 1)
    await worker.tick()  # the tick sees the batch: from now on the request is marked
    await worker.interactive(env, visit)
    assert seen == [False, True]


def _failed_upstream(env: Envelope, exc: RelayError) -> Outcome:
    """What a visit whose one upstream call failed hands back: the line, to try again."""
    tried = env.model_copy(
        update={"attempts": env.attempts + 1, "failures": [*env.failures, exc.to_info()]}
    )
    return Forward(tried, 1.0)


async def test_failed_attempts_are_counted_per_line_across_redeliveries(
    store: BatchStore,
) -> None:
    batch_id = await running(store, 1)
    await store.claim(batch_id, now=time.time(), rate=10, burst=1, window=1, max_n=1, due=0)
    books = LineBooks(
        store,
        Gate(Priority(store.redis, store.prefix, 3.0), no_wait),
        line_timeout_s=60,
        hold_s=2,
        on_finished=lambda: None,
        max_attempts=3,
    )
    down = UpstreamUnavailable(
        "p answered 503", provider="p", model="m", upstream_status=503, upstream_body='{"e": 1}'
    )
    paced = RateLimited("slow down", provider="p", model="m", upstream_status=429)

    async def visit(env: Envelope) -> Outcome:
        return _failed_upstream(env, down)

    async def rate_limited(env: Envelope) -> Outcome:
        return _failed_upstream(env, paced)

    # Every visit starts from a fresh envelope (attempts 0), as after a redelivery, a re-send
    # by the sweeper or a worker's restart: the count lives in Redis, not in the envelope.
    for _ in range(2):
        assert isinstance(await books.handle(_env(batch_id), visit), Forward)
        assert isinstance(await books.handle(_env(batch_id), rate_limited), Forward)  # pacing
    assert not await store.redis.hexists(store.keys(batch_id).results, "c0")
    last = await books.handle(_env(batch_id), visit)
    assert isinstance(last, Done) and not last.reply.ok
    is_output, line = split(await result(store, batch_id, "c0"))
    assert not is_output
    response = json.loads(line)["response"]
    assert (response["status_code"], response["body"]) == (503, {"e": 1})
    batch = await store.batch(batch_id)
    assert batch is not None and batch.failed == 1


async def test_a_slow_visit_keeps_its_line_from_the_sweeper(store: BatchStore) -> None:
    timeout = 1.0
    batch_id = await running(store, 1)
    now = time.time()
    await store.claim(batch_id, now=now, rate=10, burst=1, window=1, max_n=1, due=now + timeout)
    books = LineBooks(
        store,
        Gate(Priority(store.redis, store.prefix, 3.0), no_wait),
        line_timeout_s=timeout,
        hold_s=2,
        on_finished=lambda: None,
    )
    swept: list[int] = []

    async def slow(env: Envelope) -> Outcome:
        """An upstream answering after three line timeouts, while the sweeper looks on."""
        for _ in range(12):
            await asyncio.sleep(timeout / 4)
            swept.extend(await store.stale(batch_id, now=time.time(), due=0, max_n=5))
        return _ok(env)

    outcome = await books.handle(_env(batch_id), slow)
    assert isinstance(outcome, Done) and outcome.reply.ok
    assert swept == []  # never taken for a lost line while its visit ran
    assert await store.redis.zcard(store.keys(batch_id).inflight) == 0
