"""Session affinity: ``X-Session-ID`` keeps a conversation on one provider/model, and moves it
(never waits) when that one cannot serve now."""

from __future__ import annotations

from typing import Any

import pytest

from relay_core.affinity import Affinity
from relay_core.settings import Strategy
from tests.integration.streaming.support import ask, stream
from tests.support.farm import FarmFactory, model, sim_provider

pytestmark = pytest.mark.integration


def pair(sim_url: str) -> list[dict[str, Any]]:
    return [
        sim_provider(name, "openai", sim_url, [model(f"{name}-m", aliases=["chat"])])
        for name in ("a", "b")
    ]


def served(farm: Any, n: int, session: str | None, streaming: bool = False) -> list[str]:
    headers = {"X-Session-ID": session} if session else {}
    out = []
    with farm.client() as http:
        for i in range(n):
            if streaming:
                r = stream(http, ask(f"turn {i}"), headers=headers)
                assert r.status == 200, r.body
            else:
                r = http.post("/v1/chat/completions", json=ask(f"turn {i}"), headers=headers)
                assert r.status_code == 200, r.text
            out.append(r.headers["x-relay-provider"])
    return out


def test_without_a_session_round_robin_alternates(make_farm: FarmFactory) -> None:
    farm = make_farm(pair, strategy=Strategy.roundrobin)
    assert set(served(farm, 4, None)) == {"a", "b"}


@pytest.mark.parametrize("streaming", [False, True], ids=["whole", "stream"])
def test_a_session_stays_on_the_provider_that_served_it(
    make_farm: FarmFactory, streaming: bool
) -> None:
    farm = make_farm(pair, strategy=Strategy.roundrobin)
    providers = served(farm, 6, "conv-1", streaming)
    assert len(set(providers)) == 1
    key = Affinity(farm.redis, farm.settings).key("anonymous", "conv-1")  # type: ignore[arg-type]
    assert farm.redis.get(key) == f"{providers[0]}/{providers[0]}-m".encode()
    assert 0 < farm.redis.ttl(key) <= farm.settings.session_ttl_s


def test_sessions_are_independent(make_farm: FarmFactory) -> None:
    farm = make_farm(pair, strategy=Strategy.roundrobin)
    first = served(farm, 1, "s1")[0]
    second = served(farm, 1, "s2")[0]  # round robin moves on for a new session
    assert served(farm, 3, "s1") == [first] * 3
    assert served(farm, 3, "s2") == [second] * 3


def test_a_pinned_provider_that_cannot_serve_is_left_and_the_session_re_pinned(
    make_farm: FarmFactory,
) -> None:
    farm = make_farm(pair, strategy=Strategy.roundrobin, breaker_failures=1)
    pinned = served(farm, 1, "conv")[0]
    other = "b" if pinned == "a" else "a"
    farm.sim(pinned, outage=True)
    with farm.client() as http:
        r = http.post("/v1/chat/completions", json=ask("x"), headers={"X-Session-ID": "conv"})
    assert r.headers["x-relay-provider"] == other
    assert r.headers["x-relay-attempts"] == "2"  # tried the pin, failed over
    # Its breaker is open now: later turns go straight to the new pin, with no attempt on it,
    # and stay there even once it has recovered.
    assert served(farm, 3, "conv") == [other] * 3
    farm.sim(pinned, outage=False)
    assert served(farm, 3, "conv") == [other] * 3
    assert farm.sim_stats()["providers"][pinned]["errors"] == 1


def test_affinity_can_be_turned_off(make_farm: FarmFactory) -> None:
    farm = make_farm(pair, strategy=Strategy.roundrobin, session_affinity=False)
    assert set(served(farm, 4, "conv")) == {"a", "b"}
