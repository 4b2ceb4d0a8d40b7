"""Batch lines' reserved slots (issue 13): a slot reserved before its provider answered 429 is
not spent on a call (with a lead of 0.25 s, up to five such calls went out at 20 a second
into a provider that had just paused: a hidden limit's 429s doubled)."""

from __future__ import annotations

import asyncio

import httpx

from relay_core.catalogue.models import Limits
from relay_core.dispatch.envelope import Kind
from relay_core.dispatch.outcome import Forward
from relay_core.settings import Settings
from relay_sim import SimServer
from tests.unit.dispatch.support import SETTINGS, Clock, build, done, sim_config

# Reservations allowed, so the wall clock (a fixed one never reaches a wait's end).
WAITS = Settings(**{**SETTINGS, "token_wait_max_s": 1.0})


async def test_a_slot_reserved_before_its_provider_paused_is_not_spent_on_a_call(
    sim: SimServer, http: httpx.AsyncClient
) -> None:
    farm = build(
        http, [sim_config(sim, "a", Limits(rpm=600))], settings=WAITS, clock=Clock(None)
    )  # 0.1 s apart
    sim.state.reset()
    assert done(await farm.visit(farm.envelope("a", kind=Kind.batch))).ok  # the token now
    # The next line reserves the slot one refill ahead (its lead) and sleeps until it...
    line = farm.envelope("a", kind=Kind.batch, deadline_in_s=0.25)
    visit = asyncio.ensure_future(farm.visit(line))
    await asyncio.sleep(0.02)
    # ...while another call of this worker meets a 429: the provider is paused.
    await farm.limiter.pause("a", farm.clock.now + 5, farm.clock.now)
    outcome = await visit
    assert isinstance(outcome, Forward)  # back to wait, nothing sent
    assert sim.state.providers["a"].counters.accepted == 1
