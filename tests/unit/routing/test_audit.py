"""The route audit's parts: every attempt in order, the final error of a request that got no
answer, the gates of candidates kept out, and a round trip through its encoding."""

from __future__ import annotations

from relay_core.errors import CapacityExhausted, RateLimited, UpstreamTimeout, UpstreamUnavailable
from relay_core.policy.models import Policy
from relay_core.policy.ruling import Facts, decide
from relay_core.profile import Profile
from relay_core.routing.audit import (
    READ,
    Decided,
    RouteAudit,
    attempts,
    candidates,
    encode,
    final_code,
)
from relay_core.routing.ranking import LiveState, Ranker
from relay_core.routing.targets import all_targets
from relay_core.settings import Mode, Strategy
from tests.unit.routing.support import catalogue


def test_attempts_list_each_failure_then_the_answer() -> None:
    failures = [
        UpstreamUnavailable("down", provider="groq", model="m", upstream_status=503).to_info(),
        UpstreamTimeout("slow", provider="gemini", model="g").to_info(),
    ]
    got = attempts(failures, "spare/llama", None)
    assert [(a.target, a.result) for a in got] == [
        ("groq/m", "upstream_unavailable"),
        ("gemini/g", "upstream_timeout"),
        ("spare/llama", "answered"),
    ]
    assert got[0].upstream_status == 503


def test_a_request_without_answer_ends_on_its_final_error_once() -> None:
    last = RateLimited("429", provider="groq", model="m", retry_after=2).to_info()
    assert [a.result for a in attempts([last], None, last)] == ["rate_limit_exceeded"]
    final = CapacityExhausted("every candidate is out of tokens").to_info()
    assert [a.result for a in attempts([last], None, final)] == ["rate_limit_exceeded"]
    assert final_code(final) == "rate_limit_exceeded"
    assert final_code(None) is None


def test_candidates_show_gates_places_and_terms_and_the_audit_round_trips() -> None:
    targets = [t for t in all_targets(catalogue()) if t.provider.name in ("groq", "spare")]
    policy = Policy.model_validate({"name": "no-spare", "exclude": {"providers": ["spare"]}})
    ruling = decide([policy], Facts("m", Profile(), None, {}))
    kept = [t for t in targets if t.provider.name == "groq"]
    live = {kept[0].key: LiveState(breaker_open=True), kept[1].key: LiveState(wait_s=1.5)}
    route = Ranker(Strategy.least_loaded, Mode.free).route(kept, live)
    rows = candidates(Decided(targets, route.targets, live, route, ruling, Mode.free))
    gates = {r.target: r.gate for r in rows}
    assert gates["spare/llama-3.1-8b"] == "excluded by policy"
    assert gates[kept[0].key] == "breaker open"
    assert gates[kept[1].key] == "no capacity for 1.50 s"
    assert gates[kept[2].key] == "able"
    assert {r.target: r.rank for r in rows}[kept[2].key] == 1  # able before unable
    assert all(r.score is not None for r in rows if r.rank is not None)
    audit = RouteAudit("chatcmpl-1", "kowner", "m", Profile(), Mode.free, candidates=rows)
    assert READ.validate_json(encode(audit)) == audit
