"""Contract: closed -> open -> half-open -> closed or open again. Both backends."""

from __future__ import annotations

from dataclasses import replace

import pytest

from relay_core.breaker import Breaker, BreakerBackend, BreakerState
from tests.unit.breaker.conftest import POLICY
from tests.unit.limits._support import Clock


async def fail(breaker: Breaker, now: float, times: int = 1) -> None:
    for _ in range(times):
        await breaker.record(breaker.key("prov"), False, now)


async def open_it(breaker: Breaker, now: float) -> None:
    await fail(breaker, now, POLICY.failures)
    assert not (await breaker.allow(breaker.key("prov"), now)).allowed


async def test_closed_lets_calls_through(breaker: Breaker, clock: Clock):
    permit = await breaker.allow(breaker.key("prov"), clock.now)
    assert permit.allowed
    assert permit.state is BreakerState.closed
    assert not permit.is_probe
    assert permit.retry_in_s == 0


async def test_opens_after_consecutive_failures(breaker: Breaker, clock: Clock):
    key = breaker.key("prov")
    await fail(breaker, clock.now, POLICY.failures - 1)
    assert (await breaker.allow(key, clock.now)).allowed
    await fail(breaker, clock.now)
    permit = await breaker.allow(key, clock.now)
    assert not permit.allowed
    assert permit.state is BreakerState.open
    assert permit.retry_in_s == pytest.approx(POLICY.cooldown_s)


async def test_a_success_resets_the_consecutive_count(
    backend: BreakerBackend, prefix: str, clock: Clock
):
    breaker = Breaker(backend, replace(POLICY, min_calls=100), prefix)  # no ratio here
    key = breaker.key("prov")
    await fail(breaker, clock.now, POLICY.failures - 1)
    await breaker.record(key, True, clock.now)
    await fail(breaker, clock.now, POLICY.failures - 1)
    assert (await breaker.allow(key, clock.now)).allowed
    (status,) = await breaker.state([key], clock.now)
    assert status.consecutive_failures == POLICY.failures - 1


async def test_half_open_after_the_cooldown_grants_one_probe(breaker: Breaker, clock: Clock):
    key = breaker.key("prov")
    opened = clock.now
    await open_it(breaker, opened)
    early = await breaker.allow(key, opened + POLICY.cooldown_s - 0.25)
    assert not early.allowed
    assert early.retry_in_s == pytest.approx(0.25)
    probe = await breaker.allow(key, opened + POLICY.cooldown_s)
    assert probe.allowed
    assert probe.is_probe
    assert probe.state is BreakerState.half_open
    assert probe.probe_keys == (key,)
    other = await breaker.allow(key, opened + POLICY.cooldown_s + 1)
    assert not other.allowed
    assert other.state is BreakerState.half_open
    assert other.retry_in_s == pytest.approx(POLICY.probe_ttl_s - 1)


async def test_exactly_one_probe_when_many_ask(breaker: Breaker, clock: Clock):
    key = breaker.key("prov")
    await open_it(breaker, clock.now)
    later = clock.now + POLICY.cooldown_s + 0.5
    permits = [await breaker.allow(key, later) for _ in range(20)]
    assert sum(p.allowed for p in permits) == 1
    assert sum(p.is_probe for p in permits) == 1


async def test_a_probe_that_never_reports_expires(breaker: Breaker, clock: Clock):
    key = breaker.key("prov")
    await open_it(breaker, clock.now)
    first = clock.now + POLICY.cooldown_s
    assert (await breaker.allow(key, first)).is_probe
    assert not (await breaker.allow(key, first + POLICY.probe_ttl_s - 0.5)).allowed
    second = await breaker.allow(key, first + POLICY.probe_ttl_s)
    assert second.allowed
    assert second.is_probe


async def test_a_successful_probe_closes_and_resets(breaker: Breaker, clock: Clock):
    key = breaker.key("prov")
    await open_it(breaker, clock.now)
    t = clock.now + POLICY.cooldown_s
    assert (await breaker.allow(key, t)).is_probe
    await breaker.record(key, True, t + 1, probe=True)
    permit = await breaker.allow(key, t + 1)
    assert permit.allowed
    assert permit.state is BreakerState.closed
    assert not permit.is_probe
    (status,) = await breaker.state([key], t + 1)
    assert (status.consecutive_failures, status.calls, status.failures) == (0, 0, 0)
    assert status.cooldown_s == POLICY.cooldown_s


async def test_failed_probes_double_the_cooldown_up_to_the_cap(breaker: Breaker, clock: Clock):
    key = breaker.key("prov")
    t = clock.now
    await open_it(breaker, t)
    seen = []
    for _ in range(4):
        cooldown = (await breaker.allow(key, t)).retry_in_s
        seen.append(cooldown)
        t += cooldown
        assert (await breaker.allow(key, t)).is_probe
        await breaker.record(key, False, t, probe=True)
    assert seen == [5, 10, 20, 20]
    permit = await breaker.allow(key, t + 19)
    assert permit.state is BreakerState.open
    assert permit.retry_in_s == pytest.approx(1)


async def test_reopening_after_a_close_starts_from_the_base_cooldown(
    breaker: Breaker, clock: Clock
):
    key = breaker.key("prov")
    t = clock.now
    await open_it(breaker, t)
    t += POLICY.cooldown_s
    assert (await breaker.allow(key, t)).is_probe
    await breaker.record(key, False, t, probe=True)  # open for 10 s now
    t += 10
    assert (await breaker.allow(key, t)).is_probe
    await breaker.record(key, True, t, probe=True)
    await open_it(breaker, t)
    assert (await breaker.allow(key, t)).retry_in_s == pytest.approx(POLICY.cooldown_s)


async def test_late_results_of_ordinary_calls_are_ignored_once_open(breaker: Breaker, clock: Clock):
    key = breaker.key("prov")
    t = clock.now
    await open_it(breaker, t)
    await breaker.record(key, True, t + 1)  # began before it opened
    assert not (await breaker.allow(key, t + 1)).allowed
    t += POLICY.cooldown_s
    assert (await breaker.allow(key, t)).is_probe
    await breaker.record(key, False, t)  # not the probe
    assert not (await breaker.allow(key, t)).allowed  # the probe is still in flight
    await breaker.record(key, True, t, probe=True)
    assert (await breaker.allow(key, t)).state is BreakerState.closed


async def test_breakers_are_independent(breaker: Breaker, clock: Clock):
    await open_it(breaker, clock.now)
    assert (await breaker.allow(breaker.key("prov", "m"), clock.now)).allowed
    assert (await breaker.allow(breaker.key("other"), clock.now)).allowed
