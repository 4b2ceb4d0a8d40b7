"""Contract: token buckets (refill, burst cap, all-or-nothing, wait_s, debt). Both backends."""

from __future__ import annotations

import pytest

from relay_core.limits import Limiter, Reason
from relay_core.limits.plan import pause_key
from tests.unit.limits._specs import bucket, cap, counter, plan
from tests.unit.limits._support import Clock


async def test_fresh_bucket_is_full_then_refuses_with_refill_wait(limiter: Limiter, clock: Clock):
    p = plan(bucket(limiter.prefix, "rpm", rate=2.0, capacity=3, reason=Reason.rpm))
    for _ in range(3):
        assert (await limiter.acquire(p, 0, "l", clock.now)).granted
    refused = await limiter.acquire(p, 0, "l", clock.now)
    assert not refused.granted
    assert refused.reason is Reason.rpm
    assert refused.wait_s == pytest.approx(0.5)


async def test_refill_grants_exactly_at_the_wait(limiter: Limiter, clock: Clock):
    p = plan(bucket(limiter.prefix, "rpm", rate=0.5, capacity=1, reason=Reason.rpm))
    start = clock.now
    assert (await limiter.acquire(p, 0, "l", start)).granted
    assert (await limiter.acquire(p, 0, "l", start)).wait_s == pytest.approx(2.0)
    early = await limiter.acquire(p, 0, "l", start + 1.75)
    assert not early.granted
    assert early.wait_s == pytest.approx(0.25)
    assert (await limiter.acquire(p, 0, "l", start + 2.0)).granted


async def test_refill_rate_over_time(limiter: Limiter, clock: Clock):
    p = plan(bucket(limiter.prefix, "rpm", rate=4.0, capacity=1, reason=Reason.rpm))
    granted = 0
    for _ in range(160):  # poll every 1/16 s (exact in binary) for 10 s
        granted += (await limiter.acquire(p, 0, "l", clock.now)).granted
        clock.advance(0.0625)
    assert granted == 40  # one from the full bucket at 0 s, then one every 0.25 s until 9.75 s


async def test_burst_is_capped_after_long_idle(limiter: Limiter, clock: Clock):
    p = plan(bucket(limiter.prefix, "rpm", rate=1.0, capacity=2, reason=Reason.rpm))
    assert (await limiter.acquire(p, 0, "l", clock.now)).granted
    clock.advance(3600)
    results = [(await limiter.acquire(p, 0, "l", clock.now)).granted for _ in range(5)]
    assert results == [True, True, False, False, False]


async def test_token_bucket_takes_the_cost(limiter: Limiter, clock: Clock):
    p = plan(bucket(limiter.prefix, "tpm", rate=100.0, capacity=100, reason=Reason.tpm))
    assert (await limiter.acquire(p, 70, "l", clock.now)).granted
    refused = await limiter.acquire(p, 50, "l", clock.now)
    assert (refused.granted, refused.reason) == (False, Reason.tpm)
    assert refused.wait_s == pytest.approx(0.2)  # 30 left, 50 needed, 100/s
    assert (await limiter.acquire(p, 30, "l", clock.now)).granted


async def test_request_larger_than_bucket_passes_when_full_and_leaves_debt(
    limiter: Limiter, clock: Clock
):
    p = plan(bucket(limiter.prefix, "tpm", rate=10.0, capacity=10, reason=Reason.tpm))
    assert (await limiter.acquire(p, 40, "l", clock.now)).granted  # full bucket: 10 - 40 = -30
    refused = await limiter.acquire(p, 5, "l", clock.now)
    assert refused.wait_s == pytest.approx(3.5)  # pay 30 of debt, then gather 5
    clock.advance(1.0)
    big = await limiter.acquire(p, 40, "l", clock.now)  # -20 now; a big one needs a full bucket
    assert big.wait_s == pytest.approx(3.0)


async def test_refused_acquire_takes_nothing_anywhere(limiter: Limiter, clock: Clock):
    pre = limiter.prefix
    rpm = bucket(pre, "rpm", rate=1.0, capacity=5, reason=Reason.rpm)
    tpm = bucket(pre, "tpm", rate=10.0, capacity=10, reason=Reason.tpm)
    rpd = counter(pre, "rpd", limit=100, reset_at=clock.now + 3600, reason=Reason.rpd)
    conc = cap(pre, "conc", limit=3)
    p = plan(rpm, tpm, rpd, conc)
    assert (await limiter.acquire(p, 8, "a", clock.now)).granted
    before = await limiter.peek(p, clock.now)
    refused = await limiter.acquire(p, 8, "b", clock.now)  # tpm holds 2: refused
    assert (refused.granted, refused.reason) == (False, Reason.tpm)
    after = await limiter.peek(p, clock.now)
    assert [lv.available for lv in after.levels] == [lv.available for lv in before.levels]
    assert [lv.available for lv in after.levels] == [4, 2, 99, 2]


async def test_wait_is_the_longest_of_the_refusing_limits(limiter: Limiter, clock: Clock):
    pre = limiter.prefix
    rpm = bucket(pre, "rpm", rate=1.0, capacity=1, reason=Reason.rpm)
    tpm = bucket(pre, "tpm", rate=10.0, capacity=100, reason=Reason.tpm)
    p = plan(rpm, tpm)
    assert (await limiter.acquire(p, 100, "l", clock.now)).granted
    refused = await limiter.acquire(p, 50, "l", clock.now)
    assert refused.reason is Reason.tpm
    assert refused.wait_s == pytest.approx(5.0)
    clock.advance(refused.wait_s)
    assert (await limiter.acquire(p, 50, "l", clock.now)).granted


async def test_a_lagging_clock_gets_no_extra_refill(limiter: Limiter, clock: Clock):
    p = plan(bucket(limiter.prefix, "rpm", rate=1.0, capacity=1, reason=Reason.rpm))
    assert (await limiter.acquire(p, 0, "l", clock.now + 10)).granted  # a clock ahead by 10 s
    assert not (await limiter.acquire(p, 0, "l", clock.now)).granted
    assert not (await limiter.acquire(p, 0, "l", clock.now + 10.5)).granted
    assert (await limiter.acquire(p, 0, "l", clock.now + 11)).granted


async def test_reserved_slots_are_handed_out_one_refill_apart(limiter: Limiter, clock: Clock):
    p = plan(bucket(limiter.prefix, "rpm", rate=10.0, capacity=1, reason=Reason.rpm))
    start = clock.now
    waits = [(await limiter.acquire(p, 0, f"l{i}", start, reserve_s=1.0)) for i in range(4)]
    assert all(d.granted for d in waits)
    assert [d.wait_s for d in waits] == pytest.approx([0.0, 0.1, 0.2, 0.3])
    beyond = await limiter.acquire(p, 0, "l5", start, reserve_s=0.35)
    assert not beyond.granted and beyond.reason is Reason.rpm
    assert beyond.wait_s == pytest.approx(0.4)  # the next free slot, after the reserved ones


async def test_a_late_caller_loses_no_slot(limiter: Limiter, clock: Clock):
    p = plan(bucket(limiter.prefix, "rpm", rate=10.0, capacity=1, reason=Reason.rpm))
    start = clock.now
    for i in range(3):  # slots at 0, 0.1, 0.2
        assert (await limiter.acquire(p, 0, f"l{i}", start, reserve_s=1.0)).granted
    # Asked 70 ms after the last slot could have been reserved: the schedule does not move.
    late = await limiter.acquire(p, 0, "late", start + 0.27, reserve_s=1.0)
    assert late.granted and late.wait_s == pytest.approx(0.03)
    # Without reservation the same caller is refused and told the same moment.
    plain = plan(bucket(limiter.prefix, "other", rate=10.0, capacity=1, reason=Reason.rpm))
    assert (await limiter.acquire(plain, 0, "a", start)).granted
    assert (await limiter.acquire(plain, 0, "b", start + 0.05)).wait_s == pytest.approx(0.05)


async def test_a_call_sent_late_moves_the_next_slots_back_by_its_lateness(
    limiter: Limiter, clock: Clock
):
    p = plan(
        bucket(limiter.prefix, "rpm", rate=10.0, capacity=1, reason=Reason.rpm),
        bucket(limiter.prefix, "tpm", rate=1000.0, capacity=100, reason=Reason.tpm),
    )
    start = clock.now
    assert (await limiter.acquire(p, 100, "a", start, reserve_s=1.0)).wait_s == 0.0
    # It went out 40 ms after its slot: the next one is a refill after the call, not the slot.
    await limiter.shift(p, 0.04, start + 0.04)
    following = await limiter.acquire(p, 100, "b", start + 0.04, reserve_s=1.0)
    assert following.granted and following.wait_s == pytest.approx(0.1)
    # Unshifted, the same caller would have been given the slot 60 ms after the late call.
    other = plan(bucket(limiter.prefix, "other", rate=10.0, capacity=1, reason=Reason.rpm))
    assert (await limiter.acquire(other, 0, "a", start, reserve_s=1.0)).granted
    unshifted = await limiter.acquire(other, 0, "b", start + 0.04, reserve_s=1.0)
    assert unshifted.wait_s == pytest.approx(0.06)


async def test_pauses_counters_and_caps_are_never_reserved(limiter: Limiter, clock: Clock):
    pre, now = limiter.prefix, clock.now
    capped = plan(bucket(pre, "a", 1e6, 1, Reason.rpm), cap(pre, "conc", 1))
    assert (await limiter.acquire(capped, 0, "a", now)).granted
    held = await limiter.acquire(capped, 0, "b", now, reserve_s=5.0)
    assert not held.granted and held.reason is Reason.concurrency
    daily = plan(bucket(pre, "b", 10.0, 1, Reason.rpm), counter(pre, "d", 1, now + 60, Reason.rpd))
    assert (await limiter.acquire(daily, 0, "a", now)).granted
    spent = await limiter.acquire(daily, 0, "b", now, reserve_s=120.0)
    assert not spent.granted and spent.reason is Reason.rpd
    paused = plan(bucket(pre, "c", 10.0, 1, Reason.rpm), pauses=(pause_key(pre, "p"),))
    await limiter.pause("p", now + 1.0, now)
    waiting = await limiter.acquire(paused, 0, "c", now, reserve_s=5.0)
    assert not waiting.granted and waiting.reason is Reason.paused
    # A refused reservation took nothing: the bucket still grants at once after the pause.
    assert (await limiter.acquire(paused, 0, "c", now + 1.0)).granted
