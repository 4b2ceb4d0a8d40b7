"""Contract: state() without side effects, allow_all across keys, disabled keys."""

from __future__ import annotations

from relay_core.breaker import Breaker, BreakerPolicy, BreakerState, MemoryBackend, fingerprint
from relay_core.settings import Settings
from tests.unit.breaker.conftest import POLICY
from tests.unit.limits._support import Clock


async def open_key(breaker: Breaker, key: str, now: float) -> None:
    for _ in range(POLICY.failures):
        await breaker.record(key, False, now)


async def test_state_of_unknown_keys_is_closed(breaker: Breaker, clock: Clock):
    assert await breaker.state([], clock.now) == []
    (status,) = await breaker.state([breaker.key("prov")], clock.now)
    assert status.state is BreakerState.closed
    assert (status.retry_in_s, status.consecutive_failures, status.calls) == (0, 0, 0)
    assert status.cooldown_s == POLICY.cooldown_s


async def test_state_reads_without_taking_the_probe(breaker: Breaker, clock: Clock):
    key, other = breaker.key("prov"), breaker.key("prov", "m")
    await open_key(breaker, key, clock.now)
    await breaker.record(other, False, clock.now)
    opened, closed = await breaker.state([key, other], clock.now + 1)
    assert (opened.key, opened.state, opened.retry_in_s) == (key, BreakerState.open, 4)
    assert (closed.key, closed.state, closed.consecutive_failures) == (other, "closed", 1)
    later = clock.now + POLICY.cooldown_s
    for _ in range(3):
        (status,) = await breaker.state([key], later)
        assert (status.state, status.retry_in_s) == (BreakerState.half_open, 0)
    assert (await breaker.allow(key, later)).is_probe
    (status,) = await breaker.state([key], later + 10)
    assert (status.state, status.retry_in_s) == (BreakerState.half_open, POLICY.probe_ttl_s - 10)


async def test_allow_all_takes_no_probe_when_another_key_refuses(breaker: Breaker, clock: Clock):
    prov, model = breaker.keys("prov", "m")
    await open_key(breaker, prov, clock.now)
    await open_key(breaker, model, clock.now + 3)  # opens 3 s later
    t = clock.now + POLICY.cooldown_s  # prov is half-open, model still open for 3 s
    refused = await breaker.allow_all([prov, model], t)
    assert not refused.allowed
    assert refused.state is BreakerState.open
    assert refused.retry_in_s == 3
    assert (await breaker.allow(prov, t)).is_probe  # the probe was not taken above


async def test_allow_all_probes_every_half_open_key(breaker: Breaker, clock: Clock):
    prov, model = breaker.keys("prov", "m")
    await open_key(breaker, model, clock.now)
    t = clock.now + POLICY.cooldown_s
    permit = await breaker.allow_all([prov, model], t)
    assert permit.allowed
    assert permit.state is BreakerState.half_open
    assert permit.probe_keys == (model,)
    assert not (await breaker.allow_all([prov, model], t)).allowed
    await breaker.record_permit(permit, True, t)
    (p, m) = await breaker.state([prov, model], t)
    assert (p.state, p.calls, m.state) == (BreakerState.closed, 1, BreakerState.closed)


async def test_a_refused_permit_records_nothing(breaker: Breaker, clock: Clock):
    key = breaker.key("prov")
    await open_key(breaker, key, clock.now)
    refused = await breaker.allow(key, clock.now)
    await breaker.record_permit(refused, True, clock.now)
    assert (await breaker.allow(key, clock.now)).state is BreakerState.open


async def test_a_disabled_key_stays_disabled_until_the_key_changes(breaker: Breaker, clock: Clock):
    old, new = fingerprint("sk-old-secret"), fingerprint("sk-new-secret")
    assert not await breaker.is_disabled("prov", old)
    await breaker.disable("prov", old, "401 invalid api key", clock.now)
    assert await breaker.is_disabled("prov", old)
    assert not await breaker.is_disabled("prov", new)
    assert not await breaker.is_disabled("other", old)
    found = await breaker.disabled("prov")
    assert found is not None
    assert (found.fingerprint, found.reason, found.since) == (old, "401 invalid api key", clock.now)
    await breaker.enable("prov")
    assert not await breaker.is_disabled("prov", old)
    assert await breaker.disabled("prov") is None


def test_fingerprint_is_short_stable_and_not_the_key():
    fp = fingerprint("sk-secret-value")
    assert fp == fingerprint("sk-secret-value") != fingerprint("sk-secret-valuf")
    assert len(fp) == 16
    assert "secret" not in fp
    int(fp, 16)


def test_policy_comes_from_settings():
    settings = Settings(
        breaker_failures=7,
        breaker_ratio=0.25,
        breaker_window_s=30,
        breaker_min_calls=20,
        breaker_cooldown_s=2,
        breaker_cooldown_max_s=64,
        request_timeout_s=45,
    )
    assert BreakerPolicy.from_settings(settings) == BreakerPolicy(7, 0.25, 30, 20, 2, 64, 45)
    breaker = Breaker.from_settings(Settings(key_prefix="acme"), MemoryBackend())
    assert breaker.key("groq", "llama") == "acme:breaker:state:groq/llama"
