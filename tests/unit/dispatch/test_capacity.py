"""What a visit does before calling anyone: tokens, deadlines, breakers, candidates this
worker does not serve. None of these calls upstream."""

from __future__ import annotations

import time

import httpx
import pytest

from relay_core.catalogue.models import Limits
from relay_core.dispatch.envelope import Kind
from relay_core.limits import Reason
from relay_core.limits.plan import PACING_MARGIN
from relay_core.settings import Settings
from relay_sim import SimServer
from tests.unit.dispatch.support import (
    MODEL,
    SETTINGS,
    Clock,
    build,
    done,
    forward,
    order,
    sim_config,
    upstream_calls,
)

ONE_RPM_WAIT_S = 60 / (1 - PACING_MARGIN)  # an empty one-request bucket refills in this long
SIX_RPM_WAIT_S = ONE_RPM_WAIT_S / 6


async def test_no_tokens_now_swaps_in_a_candidate_that_has_them(
    sim: SimServer, http: httpx.AsyncClient
) -> None:
    farm = build(http, [sim_config(sim, "a", Limits(rpm=1)), sim_config(sim, "b")])
    await farm.drain("a")
    before = upstream_calls(sim, "a")

    step = forward(await farm.visit(farm.envelope("a", "b")))

    env = step.envelope
    assert step.delay_s == 0.0
    assert (order(env), env.index, env.attempts, env.failures) == (["b", "a"], 0, 0, [])
    assert upstream_calls(sim, "a") == before
    assert farm.sink.records == []
    reply = done(await farm.visit(env))
    assert (reply.provider, reply.attempts) == ("b", 1)


async def test_a_swap_leaves_the_tried_candidates_in_place(
    sim: SimServer, http: httpx.AsyncClient
) -> None:
    configs = [sim_config(sim, "down"), sim_config(sim, "a", Limits(rpm=1)), sim_config(sim, "c")]
    farm = build(http, configs)
    await farm.drain("a")

    failed = forward(await farm.visit(farm.envelope("down", "a", "c")))
    step = forward(await farm.visit(failed.envelope))

    assert (order(step.envelope), step.envelope.index) == (["down", "c", "a"], 1)


@pytest.mark.parametrize("kind", [Kind.interactive, Kind.batch])
async def test_nothing_with_capacity_soon(
    sim: SimServer, http: httpx.AsyncClient, kind: Kind
) -> None:
    """Interactive: a final 429 saying when to retry. Batch: come back later, not failed."""
    configs = [sim_config(sim, "a", Limits(rpm=1)), sim_config(sim, "b", Limits(rpm=1))]
    farm = build(http, configs)
    await farm.drain("a")
    await farm.drain("b")

    outcome = await farm.visit(farm.envelope("a", "b", kind=kind))

    if kind is Kind.interactive:
        reply = done(outcome)
        assert reply.error is not None
        assert reply.error.kind == "CapacityExhausted"
        assert reply.error.retry_after == pytest.approx(ONE_RPM_WAIT_S)
    else:
        step = forward(outcome)
        assert step.delay_s == farm.settings.requeue_delay_max_s
        assert (order(step.envelope), step.envelope.attempts) == (["a", "b"], 0)
    assert farm.sink.records == []


async def test_the_candidate_with_capacity_soonest_goes_first(
    sim: SimServer, http: httpx.AsyncClient
) -> None:
    configs = [sim_config(sim, "a", Limits(rpm=1)), sim_config(sim, "b", Limits(rpm=6))]
    farm = build(http, configs)
    await farm.drain("a")
    await farm.drain("b")

    step = forward(await farm.visit(farm.envelope("a", "b")))

    # b's 10 s is within max_queue_wait_s: the interactive request waits in the queue for it
    assert farm.settings.max_queue_wait_s > SIX_RPM_WAIT_S
    assert order(step.envelope) == ["b", "a"]
    assert step.delay_s == farm.settings.requeue_delay_max_s


async def test_capacity_after_the_deadline_is_a_final_429(
    sim: SimServer, http: httpx.AsyncClient
) -> None:
    farm = build(http, [sim_config(sim, "b", Limits(rpm=6))])
    await farm.drain("b")

    reply = done(await farm.visit(farm.envelope("b", deadline_in_s=SIX_RPM_WAIT_S / 2)))

    assert reply.error is not None
    assert reply.error.kind == "CapacityExhausted"
    assert reply.error.retry_after == pytest.approx(SIX_RPM_WAIT_S)


async def test_a_daily_budget_too_small_for_the_request_is_not_retried_at_once(
    sim: SimServer, http: httpx.AsyncClient
) -> None:
    """The day's tokens left fit a 1-token probe but not this request: its capacity comes
    back at the daily reset, not in 10 ms."""
    farm = build(http, [sim_config(sim, "a", Limits(tpd=100))])
    plan = farm.state.plan(farm.target("a"), farm.clock.now)
    assert (await farm.limiter.acquire(plan, 40, "earlier", farm.clock.now)).granted
    reset_in_s = 12 * 3600  # START is noon UTC; the counter resets at midnight UTC

    reply = done(await farm.visit(farm.envelope("a")))  # needs ~70 tokens, 60 are left
    assert reply.error is not None
    assert reply.error.kind == "CapacityExhausted"
    assert reply.error.retry_after == pytest.approx(reset_in_s)

    step = forward(await farm.visit(farm.envelope("a", kind=Kind.batch)))
    assert step.delay_s == farm.settings.requeue_delay_max_s


async def test_a_short_wait_is_spent_in_place(sim: SimServer, http: httpx.AsyncClient) -> None:
    settings = Settings(**{**SETTINGS, "token_wait_max_s": 1.0})
    configs = [sim_config(sim, "a", Limits(rpm=1200)), sim_config(sim, "b")]
    farm = build(http, configs, clock=Clock(None), settings=settings)
    await farm.drain("a")  # the next request may start 1/19.6 s from now

    started = time.monotonic()
    reply = done(await farm.visit(farm.envelope("a", "b")))

    assert reply.provider == "a"  # waited for a rather than hopping to b
    assert time.monotonic() - started >= 0.9 / (1200 / 60 * (1 - PACING_MARGIN))


@pytest.mark.parametrize("kind", [Kind.interactive, Kind.batch])
async def test_a_passed_deadline_is_a_gateway_timeout(
    sim: SimServer, http: httpx.AsyncClient, kind: Kind
) -> None:
    farm = build(http, [sim_config(sim, "a")])
    env = farm.envelope("a", kind=kind, deadline_in_s=5.0, attempts=2)
    before = upstream_calls(sim, "a")
    farm.clock.advance(5.0)

    reply = done(await farm.visit(env))

    assert reply.error is not None
    assert (reply.error.kind, reply.attempts) == ("GatewayTimeout", 2)
    assert upstream_calls(sim, "a") == before


async def test_an_open_breaker_is_skipped_and_its_tokens_given_back(
    sim: SimServer, http: httpx.AsyncClient
) -> None:
    farm = build(http, [sim_config(sim, "a", Limits(tpm=6000)), sim_config(sim, "b")])
    for _ in range(farm.settings.breaker_failures):
        await farm.breaker.record(farm.breaker.key("a"), False, farm.clock.now)
    before = upstream_calls(sim, "a")

    step = forward(await farm.visit(farm.envelope("a", "b")))

    assert (step.envelope.index, step.envelope.attempts) == (1, 0)
    assert [(f.kind, f.provider) for f in step.envelope.failures] == [("CircuitOpen", "a")]
    assert upstream_calls(sim, "a") == before
    assert farm.sink.records == []
    (tpm,) = [lv for lv in (await farm.peek("a")).levels if lv.reason is Reason.tpm]
    assert tpm.available == tpm.limit

    # After the cool-down one probe goes through, and its success closes the breaker.
    farm.clock.advance(farm.settings.breaker_cooldown_s)
    reply = done(await farm.visit(farm.envelope("a", "b")))
    assert (reply.provider, reply.model) == ("a", MODEL)


async def test_a_candidate_this_worker_does_not_serve_is_skipped(
    sim: SimServer, http: httpx.AsyncClient
) -> None:
    farm = build(http, [sim_config(sim, "a")])

    step = forward(await farm.visit(farm.envelope("elsewhere", "a")))

    assert step.envelope.index == 1
    assert [(f.kind, f.provider) for f in step.envelope.failures] == [
        ("UpstreamUnavailable", "elsewhere")
    ]


async def test_every_candidate_skipped_ends_the_round(
    sim: SimServer, http: httpx.AsyncClient
) -> None:
    farm = build(http, [sim_config(sim, "a")])
    env = farm.envelope("a", index=1)

    reply = done(await farm.visit(env))
    assert reply.error is not None
    assert reply.error.kind == "CapacityExhausted"  # no failure at all: come back later

    step = forward(await farm.visit(farm.envelope("a", kind=Kind.batch, index=1)))
    assert (step.envelope.index, step.delay_s) == (0, 1.0)
