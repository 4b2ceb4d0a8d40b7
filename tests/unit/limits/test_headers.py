"""Upstream headers -> limits: which window a "remaining" means, and whom a 429 pauses."""

from __future__ import annotations

import pytest

from relay_core.catalogue.models import Limits
from relay_core.limits import Limiter, Reason, Remaining, build_specs, remaining_from
from relay_core.providers.base import RateLimitFeedback
from tests.unit.limits._catalogue import model, provider
from tests.unit.limits._support import START, Clock

# Groq publishes per-model limits; its requests headers count the day, tokens the minute.
GROQ = provider(
    Limits(),
    model("llama", Limits(rpm=30, rpd=14_400, tpm=6_000)),
    model("gemma", Limits(rpm=30)),
)
# Mistral's free tier limits the key, per minute.
MISTRAL = provider(Limits(rpm=60, tpm=500_000), model("small"), model("large"))


def test_the_reported_limit_names_the_window():
    plan = build_specs("x", GROQ, GROQ.models[0], START)
    feedback = RateLimitFeedback(
        remaining_requests=9, limit_requests=14_400, remaining_tokens=20, limit_tokens=6_000
    )
    assert remaining_from(plan, feedback) == Remaining(rpd=9, tpm=20)


@pytest.mark.parametrize(
    ("reset_s", "expected"),
    [(None, Remaining(rpm=3)), (30.0, Remaining(rpm=3)), (3600.0, Remaining(rpd=3))],
)
def test_without_a_limit_the_reset_time_names_the_window(
    reset_s: float | None, expected: Remaining
):
    plan = build_specs("x", MISTRAL, MISTRAL.models[0], START)
    feedback = RateLimitFeedback(remaining_requests=3, reset_requests_s=reset_s)
    assert remaining_from(plan, feedback) == expected
    assert remaining_from(plan, RateLimitFeedback()) == Remaining()


async def test_groq_feedback_lowers_the_models_limits_and_pauses_the_model(
    limiter: Limiter, clock: Clock
):
    llama, gemma = (limiter.plan(GROQ, m, clock.now) for m in GROQ.models)
    feedback = RateLimitFeedback(
        remaining_requests=5,
        limit_requests=14_400,
        remaining_tokens=20,
        limit_tokens=6_000,
        retry_after_s=7.0,
    )
    await limiter.apply_feedback(llama, feedback, clock.now)
    seen = await limiter.peek(llama, clock.now)
    assert [(lv.reason, lv.available) for lv in seen.levels] == [
        (Reason.rpm, 1),
        (Reason.tpm, 20),
        (Reason.rpd, 5),
    ]
    paused = await limiter.acquire(llama, 0, "l", clock.now)
    assert paused.reason is Reason.paused
    assert paused.wait_s == pytest.approx(7)
    assert (await limiter.acquire(gemma, 0, "l", clock.now)).granted


async def test_mistral_feedback_pauses_the_whole_provider(limiter: Limiter, clock: Clock):
    small, large = (limiter.plan(MISTRAL, m, clock.now) for m in MISTRAL.models)
    feedback = RateLimitFeedback(remaining_requests=0, reset_requests_s=20, retry_after_s=2)
    await limiter.apply_feedback(small, feedback, clock.now)
    assert (await limiter.acquire(large, 0, "l", clock.now)).reason is Reason.paused
    assert (await limiter.peek(large, clock.now)).levels[0].available == 0
    seen = await limiter.peek(large, clock.now + 2)
    assert seen.levels[0].available == 1  # the rpm bucket was emptied, 2 s refilled it (cap 1)
