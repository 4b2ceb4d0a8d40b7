"""Contract: concurrency caps (leases, release, expiry of a dead worker's lease)."""

from __future__ import annotations

import pytest

from relay_core.limits import Limiter, Reason
from tests.unit.limits._specs import cap, plan
from tests.unit.limits._support import Clock


async def test_cap_refuses_then_release_frees_a_slot(limiter: Limiter, clock: Clock):
    p = plan(cap(limiter.prefix, "conc", limit=2))
    assert (await limiter.acquire(p, 0, "a", clock.now)).granted
    assert (await limiter.acquire(p, 0, "b", clock.now)).granted
    refused = await limiter.acquire(p, 0, "c", clock.now)
    assert (refused.granted, refused.reason) == (False, Reason.concurrency)
    assert refused.wait_s == pytest.approx(0.05)
    await limiter.release(p, "b", 0, 0, clock.now)
    assert (await limiter.acquire(p, 0, "c", clock.now)).granted
    assert not (await limiter.acquire(p, 0, "d", clock.now)).granted


async def test_a_lease_already_held_may_be_taken_again(limiter: Limiter, clock: Clock):
    p = plan(cap(limiter.prefix, "conc", limit=1))
    assert (await limiter.acquire(p, 0, "a", clock.now)).granted
    assert (await limiter.acquire(p, 0, "a", clock.now)).granted
    assert not (await limiter.acquire(p, 0, "b", clock.now)).granted


async def test_a_dead_workers_lease_expires(limiter: Limiter, clock: Clock):
    p = plan(cap(limiter.prefix, "conc", limit=1, lease_ttl_s=30))
    start = clock.now
    assert (await limiter.acquire(p, 0, "dead", start)).granted
    assert not (await limiter.acquire(p, 0, "b", start + 29.9)).granted
    soon = await limiter.acquire(p, 0, "b", start + 29.99)
    assert soon.wait_s == pytest.approx(0.01)  # the lease expires before the poll interval
    assert (await limiter.acquire(p, 0, "b", start + 30)).granted


async def test_release_of_an_unknown_lease_changes_nothing(limiter: Limiter, clock: Clock):
    p = plan(cap(limiter.prefix, "conc", limit=1))
    assert (await limiter.acquire(p, 0, "a", clock.now)).granted
    await limiter.release(p, "zzz", 0, 0, clock.now)
    assert not (await limiter.acquire(p, 0, "b", clock.now)).granted
