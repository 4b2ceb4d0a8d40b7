"""Contract: release corrections (refund, debt), upstream pauses and remaining-headers."""

from __future__ import annotations

import pytest

from relay_core.catalogue.models import Limits
from relay_core.limits import Limiter, MemoryBackend, Reason
from relay_core.limits.plan import PACING_MARGIN
from relay_core.providers.base import RateLimitFeedback
from tests.unit.limits._catalogue import model, provider
from tests.unit.limits._specs import bucket, cap, counter, plan
from tests.unit.limits._support import Clock


async def _levels(limiter: Limiter, p, now: float) -> list[float]:
    return [lv.available for lv in (await limiter.peek(p, now)).levels]


async def test_release_refunds_unused_tokens_up_to_capacity(limiter: Limiter, clock: Clock):
    pre = limiter.prefix
    p = plan(
        bucket(pre, "rpm", rate=1.0, capacity=5, reason=Reason.rpm),
        bucket(pre, "tpm", rate=10.0, capacity=100, reason=Reason.tpm),
        counter(pre, "tpd", limit=1000, reset_at=clock.now + 3600, reason=Reason.tpd),
    )
    assert (await limiter.acquire(p, 80, "l", clock.now)).granted
    assert await _levels(limiter, p, clock.now) == [4, 20, 920]
    await limiter.release(p, "l", actual_tokens=30, estimated_tokens=80, now=clock.now)
    assert await _levels(limiter, p, clock.now) == [4, 70, 970]  # requests are not refunded
    await limiter.release(p, "l", actual_tokens=0, estimated_tokens=80, now=clock.now)
    assert await _levels(limiter, p, clock.now) == [4, 100, 1000]  # capped, floored


async def test_release_charges_debt_that_refill_pays(limiter: Limiter, clock: Clock):
    pre = limiter.prefix
    p = plan(
        bucket(pre, "tpm", rate=10.0, capacity=100, reason=Reason.tpm),
        counter(pre, "tpd", limit=1000, reset_at=clock.now + 3600, reason=Reason.tpd),
    )
    assert (await limiter.acquire(p, 50, "l", clock.now)).granted
    await limiter.release(p, "l", actual_tokens=120, estimated_tokens=50, now=clock.now)
    assert await _levels(limiter, p, clock.now) == [-20, 880]
    refused = await limiter.acquire(p, 10, "l", clock.now)
    assert refused.reason is Reason.tpm
    assert refused.wait_s == pytest.approx(3.0)


async def test_a_refund_never_takes_a_counter_below_zero(limiter: Limiter, clock: Clock):
    pre = limiter.prefix
    p = plan(counter(pre, "tpd", limit=1000, reset_at=clock.now + 3600, reason=Reason.tpd))
    await limiter.release(p, "l", actual_tokens=0, estimated_tokens=500, now=clock.now)
    assert await _levels(limiter, p, clock.now) == [1000]
    assert (await limiter.acquire(p, 100, "l", clock.now)).granted
    await limiter.release(p, "l", actual_tokens=0, estimated_tokens=500, now=clock.now)
    assert await _levels(limiter, p, clock.now) == [1000]


async def test_release_frees_the_slot_even_without_a_correction(limiter: Limiter, clock: Clock):
    p = plan(cap(limiter.prefix, "conc", limit=1))
    assert (await limiter.acquire(p, 10, "a", clock.now)).granted
    await limiter.release(p, "a", actual_tokens=10, estimated_tokens=10, now=clock.now)
    assert (await limiter.acquire(p, 10, "b", clock.now)).granted


class CountingBackend(MemoryBackend):
    """The memory backend, counting the ``release`` calls that reach it."""

    def __init__(self) -> None:
        super().__init__()
        self.releases = 0

    async def release(self, plan, lease_id, delta_tokens, now):
        self.releases += 1
        await super().release(plan, lease_id, delta_tokens, now)


async def test_a_release_with_nothing_to_do_does_not_reach_the_backend(clock: Clock):
    backend = CountingBackend()
    limiter = Limiter(backend, "test")
    rpm_only = plan(bucket("test", "rpm", rate=1.0, capacity=5, reason=Reason.rpm))
    tpm = plan(bucket("test", "tpm", rate=10.0, capacity=100, reason=Reason.tpm))
    capped = plan(cap("test", "conc", limit=1))
    for p in (rpm_only, tpm, capped):
        assert (await limiter.acquire(p, 10, "l", clock.now)).granted
    await limiter.release(rpm_only, "l", 30, 10, clock.now)  # no token limit to correct
    await limiter.release(tpm, "l", 10, 10, clock.now)  # the estimate was exact
    assert backend.releases == 0
    await limiter.release(tpm, "l", 30, 10, clock.now)  # a correction
    await limiter.release(capped, "l", 10, 10, clock.now)  # a lease to free
    assert backend.releases == 2
    assert (await limiter.acquire(capped, 10, "m", clock.now)).granted


async def test_pause_refuses_until_the_instant_and_never_shrinks(limiter: Limiter, clock: Clock):
    prov = provider(Limits(rpm=600))
    p = limiter.plan(prov, prov.models[0], clock.now)
    start = clock.now
    await limiter.pause("prov", start + 30, start)
    await limiter.pause("prov", start + 10, start)  # a shorter retry-after
    refused = await limiter.acquire(p, 0, "l", start)
    assert not refused.granted
    assert refused.reason is Reason.paused
    assert refused.wait_s == pytest.approx(30)
    assert not (await limiter.acquire(p, 0, "l", start + 29.5)).granted
    assert (await limiter.acquire(p, 0, "l", start + 30)).granted


async def test_a_model_pause_leaves_the_other_models_alone(limiter: Limiter, clock: Clock):
    prov = provider(Limits(), model("a"), model("b"))
    plan_a, plan_b = (limiter.plan(prov, m, clock.now) for m in prov.models)
    await limiter.pause("prov", clock.now + 5, clock.now, model="a")
    assert (await limiter.acquire(plan_a, 0, "l", clock.now)).reason is Reason.paused
    assert (await limiter.acquire(plan_b, 0, "l", clock.now)).granted


async def test_lower_never_raises_and_refill_goes_on(limiter: Limiter, clock: Clock):
    pre = limiter.prefix
    p = plan(bucket(pre, "tpm", rate=10.0, capacity=100, reason=Reason.tpm))
    await limiter.lower(p, clock.now, tpm=40)
    assert await _levels(limiter, p, clock.now) == [40]
    await limiter.lower(p, clock.now, tpm=90)
    assert await _levels(limiter, p, clock.now) == [40]
    assert await _levels(limiter, p, clock.now + 2) == [60]
    await limiter.lower(p, clock.now, rpm=0)  # no rpm bucket in this plan: nothing happens
    assert await _levels(limiter, p, clock.now) == [40]


async def test_lower_touches_the_most_specific_limit_of_each_kind(limiter: Limiter, clock: Clock):
    prov = provider(Limits(rpm=600, rpd=100), model("a", Limits(rpm=120, rpd=50)))
    p = limiter.plan(prov, prov.models[0], clock.now)
    await limiter.lower(p, clock.now, rpm=0, rpd=5)
    assert await _levels(limiter, p, clock.now) == [1, 0, 100, 5]
    await limiter.lower(p, clock.now, rpd=40)  # never raises
    assert await _levels(limiter, p, clock.now) == [1, 0, 100, 5]
    refused = await limiter.acquire(p, 0, "l", clock.now)
    assert refused.reason is Reason.rpm
    assert refused.wait_s == pytest.approx(0.5 / (1 - PACING_MARGIN))


async def test_negative_cost_is_a_bug(limiter: Limiter, clock: Clock):
    with pytest.raises(ValueError, match="cost_tokens"):
        await limiter.acquire(plan(), -1, "l", clock.now)


async def test_none_left_right_after_our_own_request_changes_nothing(
    limiter: Limiter, clock: Clock
):
    """Pacing at 600 RPM fills a provider's one-second window now and then; the next unit frees
    (reset / limit = 0.1 s) before our next slot would come anyway: keep the earned refill."""
    prov = provider(Limits(rpm=600))
    p = limiter.plan(prov, prov.models[0], clock.now)
    assert (await limiter.acquire(p, 0, "a", clock.now)).granted
    clock.advance(0.08)
    said = RateLimitFeedback(remaining_requests=0, limit_requests=10, reset_requests_s=1.0)
    await limiter.apply_feedback(p, said, clock.now)
    wait = (await limiter.peek(p, clock.now)).wait_s
    assert wait == pytest.approx(1 / (10 * (1 - PACING_MARGIN)) - 0.08, abs=1e-6)


async def test_none_left_for_longer_than_our_pacing_waits_for_the_upstream(
    limiter: Limiter, clock: Clock
):
    """The upstream is stricter than the catalogue (60 RPM, not 600): with none left it frees
    its next unit in 30 s / 60 = 0.5 s, later than our next slot (0.1 s): wait for it."""
    prov = provider(Limits(rpm=600))
    p = limiter.plan(prov, prov.models[0], clock.now)
    assert (await limiter.acquire(p, 0, "a", clock.now)).granted
    clock.advance(0.05)
    said = RateLimitFeedback(remaining_requests=0, limit_requests=60, reset_requests_s=30.0)
    await limiter.apply_feedback(p, said, clock.now)
    assert (await limiter.peek(p, clock.now)).wait_s == pytest.approx(0.5, abs=1e-6)
    assert (await limiter.acquire(p, 0, "b", clock.now + 0.5)).granted
