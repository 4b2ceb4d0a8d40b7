"""The API's stream reader (``relay_api.stream_mux``) on a real Redis: lanes, wakes, limits."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from relay_api import stream_mux
from relay_api.stream_mux import LANE_SIZE, MAX_BUFFERED, ClientLeft, StreamMux
from relay_core.errors import GatewayTimeout
from relay_core.redis_pool import redis_pool
from tests.support.farm import REDIS_URL, forget_prefix, require_redis

pytestmark = pytest.mark.integration


@pytest.fixture
async def setup() -> AsyncIterator[tuple[StreamMux, Redis, str]]:
    prefix = f"rt{uuid.uuid4().hex[:10]}"
    writer = Redis.from_url(REDIS_URL)
    mux = StreamMux(redis_pool(REDIS_URL, stream_mux.MAX_LANES + 2), prefix)
    try:
        yield mux, writer, prefix
    finally:
        await mux.stop()
        await writer.aclose()
        forget_prefix(require_redis(), prefix)


async def test_many_streams_share_a_few_lanes_and_each_gets_its_own_entries(
    setup: tuple[StreamMux, Redis, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    mux, writer, prefix = setup
    # A read that blocks for a minute: only the wakes let streams that join mid-read in.
    monkeypatch.setattr(stream_mux, "BLOCK_MS", 60_000)
    subs = []
    for i in range(2 * LANE_SIZE + 2):
        subs.append(mux.open(f"{prefix}:stream:{i}"))
        await writer.xadd(f"{prefix}:stream:{i}", {b"c": str(i).encode()})
        entries = await subs[-1].read(30)  # joined a lane that is reading already
        assert entries == [{b"c": str(i).encode()}]
    assert len(mux.lanes) == 3
    assert sorted(len(lane.subs) for lane in mux.lanes) == [2, LANE_SIZE, LANE_SIZE]
    for sub in subs:
        sub.close()
    assert mux.streams == 0


async def test_a_slow_reader_is_not_read_past_its_buffer(
    setup: tuple[StreamMux, Redis, str],
) -> None:
    mux, writer, prefix = setup
    key = f"{prefix}:stream:slow"
    sub = mux.open(key)
    async with writer.pipeline(transaction=False) as pipe:
        for i in range(3 * MAX_BUFFERED):
            pipe.xadd(key, {b"c": str(i).encode()})
        await pipe.execute()
    got: list[bytes] = []
    while len(got) < 3 * MAX_BUFFERED:
        batch = await sub.read(30)
        assert len(batch) <= 2 * MAX_BUFFERED  # never more than a read past the buffer's cap
        got += [fields[b"c"] for fields in batch]
    assert got == [str(i).encode() for i in range(3 * MAX_BUFFERED)]
    sub.close()


async def test_leaving_ends_a_wait_and_silence_is_a_timeout(
    setup: tuple[StreamMux, Redis, str],
) -> None:
    mux, _, prefix = setup
    sub = mux.open(f"{prefix}:stream:left")
    sub.leave()
    with pytest.raises(ClientLeft):
        await sub.read(30)
    quiet = mux.open(f"{prefix}:stream:quiet")
    with pytest.raises(GatewayTimeout):
        await quiet.read(0.05)
