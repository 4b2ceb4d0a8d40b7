"""Which policies fire, and what they decide together; the ruling applied to the candidates
and the request."""

from __future__ import annotations

from typing import Any

import pytest

from relay_core.errors import PolicyRefused
from relay_core.policy.apply import admit, capped, gate, preferred_first, preferred_only
from relay_core.policy.models import Policy
from relay_core.policy.ruling import NOTHING, Facts, decide
from relay_core.profile import Contract, Needs, Priority, Profile, TaskFamily, profile_request
from relay_core.routing.targets import all_targets
from relay_core.schemas.chat import ChatCompletionRequest
from relay_core.settings import Mode
from tests.unit.routing.support import catalogue, keys

KEY = "k0123456789abcde"
JSON = Profile(
    family=TaskFamily.extraction,
    contract=Contract.json,
    needs=Needs(json_output=True),
    deterministic=True,
    priority=Priority.high,
)


def policy(**fields: Any) -> Policy:
    return Policy.model_validate({"name": fields.pop("name", "p"), **fields})


def facts(
    model: str = "meta-model",
    profile: Profile = JSON,
    key: str | None = KEY,
    headers: dict[str, str] | None = None,
) -> Facts:
    return Facts(model, profile, key, headers or {})


@pytest.mark.parametrize(
    ("match", "fires"),
    [
        ({}, True),
        ({"model": "meta-*"}, True),
        ({"model": ["gpt-4o", "meta-model"]}, True),
        ({"model": "gpt-*"}, False),
        ({"family": ["extraction", "coding"]}, True),
        ({"family": "chat"}, False),
        ({"contract": "json"}, True),
        ({"contract": "tools"}, False),
        ({"needs": ["json_output"]}, True),
        ({"needs": ["json_output", "vision"]}, False),  # every need listed must be present
        ({"deterministic": True}, True),
        ({"deterministic": False}, False),
        ({"priority": ["high"]}, True),
        ({"priority": "low"}, False),
        ({"key": KEY}, True),
        ({"key": "kfffffffffffffff"}, False),
        ({"header": {"x-team": "research"}}, True),
        ({"header": {"X-Team": ["ops", "research"]}}, True),
        ({"header": {"x-team": "ops"}}, False),
        ({"header": {"x-absent": "x"}}, False),
        ({"family": "extraction", "key": "kfffffffffffffff"}, False),  # every condition holds
    ],
)
def test_match_conditions(match: dict[str, Any], fires: bool) -> None:
    ruling = decide([policy(match=match, cache=True)], facts(headers={"x-team": "research"}))
    assert (ruling.fired == ("p",)) is fires


def test_no_key_never_matches_a_key_condition() -> None:
    assert decide([policy(match={"key": KEY}, cache=True)], facts(key=None)) is NOTHING


def test_actions_combine_over_every_firing_policy_in_order() -> None:
    policies = [
        policy(name="a", prefer={"providers": ["gemini"]}, cap={"max_tokens": 400}, mode="auto"),
        policy(name="skipped", match={"family": "chat"}, mode="paid", hedge=True),
        policy(
            name="b",
            exclude={"providers": ["ollama"]},
            require={"tier": "free"},
            prefer={"providers": ["spare"]},
            cap={"max_tokens": 200, "temperature": 0.5},
            mode="paid",
            hedge=True,
            cache=False,
        ),
        policy(name="c", exclude={"providers": ["spare/llama-3.1-8b"]}, cache=True),
    ]
    ruling = decide(policies, facts())
    assert ruling.fired == ("a", "b", "c")
    assert ruling.max_tokens == 200 and ruling.temperature == 0.5  # the lowest caps
    assert ruling.mode is Mode.auto  # the first that sets it
    assert ruling.hedge is True and ruling.cache is False  # b set cache first
    targets = admit(ruling, all_targets(catalogue()), Mode.paid)
    assert keys(targets) == [
        "groq/llama-3.1-8b",
        "groq/qwen-coder-32b",
        "groq/openai/gpt-oss-20b",
        "gemini/gemini-flash",
    ]  # ollama and spare excluded, openai not required (paid)
    assert keys(preferred_first(ruling, targets))[0] == "gemini/gemini-flash"


def test_gates_say_why_a_target_is_kept_out() -> None:
    ruling = decide(
        [policy(exclude={"providers": ["groq"]}, require={"providers": ["groq", "gemini"]})],
        facts(),
    )
    by_key = {t.key: t for t in all_targets(catalogue())}
    assert gate(ruling, by_key["groq/llama-3.1-8b"], Mode.paid) == "excluded by policy"
    assert gate(ruling, by_key["spare/llama-3.1-8b"], Mode.paid) == "not required by policy"
    assert gate(ruling, by_key["openai/gpt-4o"], Mode.free) == "paid tier, mode free"
    assert gate(ruling, by_key["gemini/gemini-flash"], Mode.paid) is None


def test_a_forced_free_mode_drops_paid_targets() -> None:
    ruling = decide([policy(mode="free")], facts())
    assert "openai/gpt-4o" not in keys(admit(ruling, all_targets(catalogue()), Mode.free))


def test_policies_that_leave_no_candidate_are_a_400_naming_them() -> None:
    ruling = decide([policy(name="only-paid", require={"tier": "paid"}, mode="free")], facts())
    with pytest.raises(PolicyRefused, match="only-paid") as caught:
        admit(ruling, all_targets(catalogue()), Mode.free)
    assert caught.value.status_code == 400 and caught.value.code == "policy_refused"


def test_prefer_keeps_the_ranked_order_within_each_group() -> None:
    ruling = decide(
        [
            policy(name="a", prefer={"providers": ["spare"]}),
            policy(name="b", prefer={"providers": ["groq/llama-3.1-8b", "gemini"]}),
        ],
        facts(),
    )
    ranked = all_targets(catalogue())
    assert keys(preferred_first(ruling, ranked))[:3] == [
        "spare/llama-3.1-8b",
        "groq/llama-3.1-8b",
        "gemini/gemini-flash",
    ]
    assert keys(preferred_only(ruling, ranked)) == ["spare/llama-3.1-8b"]
    without_spare = [t for t in ranked if t.provider.name != "spare"]
    assert keys(preferred_only(ruling, without_spare)) == [
        "groq/llama-3.1-8b",
        "gemini/gemini-flash",
    ]


def request(**fields: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}
    )


@pytest.mark.parametrize(
    ("asked", "sent"),
    [
        ({}, {"max_tokens": 100, "temperature": 0.3}),  # unset: set to the cap
        ({"max_tokens": 50, "temperature": 0.1}, {"max_tokens": 50, "temperature": 0.1}),
        ({"max_tokens": 5000, "temperature": 1.5}, {"max_tokens": 100, "temperature": 0.3}),
        ({"max_completion_tokens": 900}, {"max_completion_tokens": 100, "max_tokens": None}),
    ],
)
def test_caps_lower_what_was_asked_and_never_raise_it(
    asked: dict[str, Any], sent: dict[str, Any]
) -> None:
    ruling = decide([policy(cap={"max_tokens": 100, "temperature": 0.3})], facts())
    asked_body = request(**asked)
    body, profile = capped(ruling, asked_body, profile_request(asked_body))
    for name, value in sent.items():
        assert getattr(body, name) == value, name
    assert profile.capped is True  # a cut answer is now expected, not a failure
    assert profile.expected_output_tokens == body.output_limit()


def test_no_cap_leaves_the_request_as_it_was() -> None:
    body = request(max_tokens=10)
    ruling = decide([policy(hedge=True)], facts())
    assert capped(ruling, body, Profile()) == (body, Profile())
    assert ruling.hedge is True and ruling.cache is False
