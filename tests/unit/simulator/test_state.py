from __future__ import annotations

import pytest
from pydantic import ValidationError

from relay_sim.config import SimConfig, SimProvider
from relay_sim.faults import FaultKind, SimFault
from relay_sim.state import ProviderState, SimState, Ticket


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _provider(**fields) -> SimProvider:
    base = {"name": "p", "api": "openai", "models": [{"id": "m", "aliases": ["a"]}, {"id": "n"}]}
    return SimProvider.model_validate(base | fields)


def test_model_lookup_by_id_or_alias():
    state = ProviderState(_provider(), 0.0)
    assert state.model("a") is state.model("m")
    assert state.model("zzz") is None


def test_admit_enforces_provider_and_model_limits_and_debits_both():
    provider = _provider(rpm=3, models=[{"id": "m", "rpm": 1}, {"id": "n"}])
    state = ProviderState(provider, 0.0)
    m, n = state.model("m"), state.model("n")
    assert m is not None and n is not None
    headers = state.admit(m, 10, 0.0)
    assert headers["x-ratelimit-remaining-requests"] == "0"  # the model's budget is reported
    with pytest.raises(SimFault) as info:
        state.admit(m, 10, 1.0)
    assert info.value.kind is FaultKind.rate_limited
    assert info.value.retry_after_s == pytest.approx(59.0)
    assert info.value.headers["x-ratelimit-limit-requests"] == "1"
    state.admit(n, 10, 1.0)
    state.admit(n, 10, 2.0)
    with pytest.raises(SimFault, match="requests per minute"):
        state.admit(n, 10, 3.0)  # the provider's 3 RPM are spent


def test_a_refused_request_debits_nothing():
    state = ProviderState(_provider(rpm=10, models=[{"id": "m", "tpm": 100}]), 0.0)
    m = state.model("m")
    assert m is not None
    with pytest.raises(SimFault):
        state.admit(m, 500, 0.0)
    assert state.limits.snapshot(0.0).remaining_requests == 10


def test_flap_alternates_from_the_origin():
    state = ProviderState(_provider(flap_s=10), 100.0)
    assert [state.is_down(100.0 + t) for t in (0, 9.9, 10, 19.9, 20, 35)] == [
        False,
        False,
        True,
        True,
        False,
        True,
    ]


def test_ticket_tracks_in_flight_and_the_peak():
    state = ProviderState(_provider(), 0.0)
    tickets = [Ticket(state.counters) for _ in range(3)]
    for t in tickets:
        t.leave()
    tickets[0].leave()  # leaving twice is harmless
    assert (state.counters.in_flight, state.counters.max_in_flight) == (0, 3)


def test_patch_keeps_windows_unless_a_limit_changes():
    clock = Clock()
    sim = SimState(SimConfig(providers=[_provider(rpm=1)]), clock)
    p = sim.providers["p"]
    m = p.model("m")
    assert m is not None
    p.admit(m, 1, clock.now)
    sim.patch("p", {"latency_ms": 5})
    with pytest.raises(SimFault):
        p.admit(m, 1, clock.now)
    sim.patch("p", {"rpm": 2})
    m = p.model("m")
    assert m is not None
    p.admit(m, 1, clock.now)


def test_patch_refuses_unknown_fields_and_keeps_the_name():
    sim = SimState(SimConfig(providers=[_provider()]))
    with pytest.raises(ValidationError):
        sim.patch("p", {"rmp": 5})
    with pytest.raises(KeyError):
        sim.patch("nope", {})
    assert sim.patch("p", {"name": "other"}).name == "p"


def test_patch_keeps_the_expected_key():
    sim = SimState(SimConfig(providers=[_provider(api_key="sk-1")]))
    assert sim.patch("p", {"outage": True}).expected_key() == "sk-1"


def test_reset_zeroes_counters_but_not_requests_in_flight():
    sim = SimState(SimConfig(providers=[_provider(rpm=1)]))
    p = sim.providers["p"]
    p.counters.accepted = 5
    ticket = Ticket(sim.flight, p.counters)
    m = p.model("m")
    assert m is not None
    p.admit(m, 1, sim.clock())
    sim.reset()
    assert p.counters.accepted == 0
    assert p.counters.in_flight == 1
    p.admit(m, 1, sim.clock())  # the window is empty again
    ticket.leave()
    assert sim.stats()["totals"]["in_flight"] == 0  # type: ignore[index]
