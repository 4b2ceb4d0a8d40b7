"""Contract: peek and peek_many see without taking."""

from __future__ import annotations

import pytest

from relay_core.catalogue.models import Limits
from relay_core.limits import Limiter, Reason
from relay_core.limits.plan import PACING_MARGIN
from tests.unit.limits._catalogue import model, provider
from tests.unit.limits._specs import bucket, cap, plan
from tests.unit.limits._support import Clock


async def test_peek_takes_nothing(limiter: Limiter, clock: Clock):
    p = plan(
        bucket(limiter.prefix, "rpm", rate=1.0, capacity=2, reason=Reason.rpm),
        cap(limiter.prefix, "conc", limit=5),
    )
    for _ in range(10):
        seen = await limiter.peek(p, clock.now)
        assert (seen.wait_s, seen.reason) == (0, None)
    assert [lv.available for lv in seen.levels] == [2, 5]
    assert (await limiter.acquire(p, 0, "a", clock.now)).granted
    assert (await limiter.acquire(p, 0, "b", clock.now)).granted
    seen = await limiter.peek(p, clock.now)
    assert seen.reason is Reason.rpm
    assert seen.wait_s == pytest.approx(1.0)
    assert seen.headroom == 0.0


async def test_peek_waits_for_the_cost_asked(limiter: Limiter, clock: Clock):
    p = plan(bucket(limiter.prefix, "tpm", rate=10.0, capacity=100, reason=Reason.tpm))
    assert (await limiter.acquire(p, 70, "a", clock.now)).granted
    assert (await limiter.peek(p, clock.now, cost_tokens=30)).wait_s == 0
    assert (await limiter.peek(p, clock.now, cost_tokens=50)).wait_s == pytest.approx(2.0)
    assert (await limiter.peek(p, clock.now, cost_tokens=500)).wait_s == pytest.approx(7.0)


async def test_peek_many_answers_in_order(limiter: Limiter, clock: Clock):
    prov = provider(Limits(rpm=60), model("a", Limits(tpm=600)), model("b"))
    plan_a, plan_b = (limiter.plan(prov, m, clock.now) for m in prov.models)
    await limiter.pause("prov", clock.now + 9, clock.now, model="b")
    assert (await limiter.acquire(plan_a, 4, "l", clock.now)).granted
    seen_a, seen_b, seen_none = await limiter.peek_many([plan_a, plan_b, plan()], clock.now)
    assert [(lv.reason, lv.scope, lv.available, lv.limit) for lv in seen_a.levels] == [
        (Reason.rpm, "prov", 0, 1),
        (Reason.tpm, "prov/a", pytest.approx(5.8), pytest.approx(9.8)),
    ]
    assert seen_a.reason is Reason.rpm
    assert seen_a.wait_s == pytest.approx(1 / (1 - PACING_MARGIN))
    assert seen_b.reason is Reason.paused
    assert seen_b.wait_s == pytest.approx(9.0)
    assert (seen_none.wait_s, seen_none.levels, seen_none.headroom) == (0, (), 1.0)
    assert await limiter.peek_many([], clock.now) == []
