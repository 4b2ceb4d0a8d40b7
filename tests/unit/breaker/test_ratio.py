"""Contract: the failure ratio over the window opens a breaker once min_calls were seen."""

from __future__ import annotations

from dataclasses import replace

import pytest

from relay_core.breaker import Breaker, BreakerBackend, BreakerState
from tests.unit.breaker.conftest import POLICY
from tests.unit.limits._support import Clock

# Consecutive failures never trip in these tests: only the ratio does.
RATIO = replace(POLICY, failures=1000)


@pytest.fixture
def ratio_breaker(backend: BreakerBackend, prefix: str) -> Breaker:
    return Breaker(backend, RATIO, prefix)


async def record(b: Breaker, outcomes: str, now: float) -> None:
    for outcome in outcomes:
        await b.record(b.key("prov"), outcome == "s", now)


async def test_ratio_opens_once_enough_calls_were_seen(ratio_breaker: Breaker, clock: Clock):
    key = ratio_breaker.key("prov")
    await record(ratio_breaker, "fsf", clock.now)  # 2/3 failed, but only 3 calls
    assert (await ratio_breaker.allow(key, clock.now)).allowed
    await record(ratio_breaker, "s", clock.now)  # 2/4 = 0.5, but a success never opens
    assert (await ratio_breaker.allow(key, clock.now)).allowed
    await record(ratio_breaker, "f", clock.now)  # 3/5 >= 0.5
    permit = await ratio_breaker.allow(key, clock.now)
    assert permit.state is BreakerState.open


async def test_ratio_below_the_threshold_stays_closed(ratio_breaker: Breaker, clock: Clock):
    key = ratio_breaker.key("prov")
    await record(ratio_breaker, "ssfsssfss", clock.now)
    assert (await ratio_breaker.allow(key, clock.now)).allowed
    (status,) = await ratio_breaker.state([key], clock.now)
    assert (status.calls, status.failures) == (9, 2)


async def test_calls_leave_the_window(ratio_breaker: Breaker, clock: Clock):
    key = ratio_breaker.key("prov")
    start = clock.now  # a whole second: window slots are 1 s wide
    await record(ratio_breaker, "fff", start)
    (status,) = await ratio_breaker.state([key], start + RATIO.window_s - 1)
    assert status.calls == 3
    (status,) = await ratio_breaker.state([key], start + RATIO.window_s)
    assert status.calls == 0
    await record(ratio_breaker, "f", start + RATIO.window_s)  # 1/1, below min_calls
    assert (await ratio_breaker.allow(key, start + RATIO.window_s)).allowed


async def test_failures_still_in_the_window_count(ratio_breaker: Breaker, clock: Clock):
    key = ratio_breaker.key("prov")
    start = clock.now
    await record(ratio_breaker, "fff", start)
    await record(ratio_breaker, "f", start + RATIO.window_s - 1)
    assert (await ratio_breaker.allow(key, start + RATIO.window_s - 1)).state is (BreakerState.open)


async def test_a_count_records_that_many_calls_at_once(
    backend: BreakerBackend, prefix: str, clock: Clock
):
    one_by_one, at_once = Breaker(backend, RATIO, prefix), Breaker(backend, RATIO, prefix)
    a, b = one_by_one.key("prov"), at_once.key("b")
    await record(one_by_one, "f", clock.now)
    await backend.record([b], [False], False, RATIO, clock.now)
    await record(one_by_one, "sssss", clock.now)
    await backend.record([b], [False], True, RATIO, clock.now, count=5)
    (ours,) = await one_by_one.state([a], clock.now)
    (theirs,) = await at_once.state([b], clock.now)
    assert (theirs.calls, theirs.failures, theirs.consecutive_failures) == (6, 1, 0)
    assert (ours.calls, ours.failures, ours.consecutive_failures) == (6, 1, 0)


async def test_tallied_successes_are_written_together_and_before_a_failure(
    backend: BreakerBackend, prefix: str, clock: Clock
):
    tallied = Breaker(backend, RATIO, prefix, tally_s=60)
    key = tallied.key("prov")
    permit = await tallied.allow_all([key], clock.now)
    for _ in range(4):
        await tallied.record_permit(permit, True, clock.now)
    (status,) = await tallied.state([key], clock.now)
    assert status.calls == 0  # counted in memory, not written yet
    assert tallied.successes is not None and tallied.successes.pending == 4
    # A failure writes the successes first: 1 failure in 5 calls, under the ratio.
    await tallied.record_permit(permit, False, clock.now)
    (status,) = await tallied.state([key], clock.now)
    assert (status.calls, status.failures) == (5, 1)
    assert (await tallied.allow(key, clock.now)).allowed
    await tallied.record_permit(permit, True, clock.now)
    await tallied.aclose()  # shutdown writes what is left
    (status,) = await tallied.state([key], clock.now)
    assert (status.calls, status.failures, status.consecutive_failures) == (6, 1, 0)
