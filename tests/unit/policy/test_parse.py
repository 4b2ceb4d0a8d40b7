"""Policies in the catalogue: what loads, and every error naming the rule and the field."""

from __future__ import annotations

import textwrap

from relay_core.catalogue.models import Tier
from relay_core.profile.models import TaskFamily
from relay_core.settings import Mode
from tests.unit.catalogue.conftest import GROQ, load, only_problem, problems

HEAD = "providers:\n" + GROQ + "policies:\n"


def with_policies(policies: str) -> str:
    return HEAD + textwrap.indent(textwrap.dedent(policies), "  ")


def test_a_full_policy_loads_with_single_values_read_as_lists() -> None:
    catalogue = load(
        with_policies("""\
        - name: json-to-groq
          match:
            model: "gpt-*"
            family: extraction
            needs: [json_output]
            deterministic: true
            priority: [high]
            key: k0123456789abcde
            header: {X-Team: research}
          prefer: {providers: [groq/llama-3.1-8b]}
          exclude: {tier: paid}
          require: {providers: [groq]}
          cap: {temperature: 0.2, max_tokens: 512}
          mode: free
          hedge: true
          cache: true
        """)
    )
    (policy,) = catalogue.policies
    assert policy.match.model == ["gpt-*"]
    assert policy.match.family == [TaskFamily.extraction]
    assert policy.match.key == ["k0123456789abcde"]
    assert policy.match.header == {"x-team": ["research"]}  # names read in lower case
    assert policy.exclude is not None and policy.exclude.tier is Tier.paid
    assert policy.mode is Mode.free
    assert policy.cap is not None and policy.cap.max_tokens == 512


def test_no_policies_is_an_empty_list() -> None:
    assert load("providers:\n" + GROQ).policies == []


def test_an_unknown_provider_names_the_policy_the_action_and_the_entry() -> None:
    line = only_problem(
        with_policies("""\
        - name: no-cohere
          exclude: {providers: [groq, cohere]}
        """)
    )
    assert line == (
        "relay.yaml:12: policy 'no-cohere' → exclude.providers[1]: no provider 'cohere' in "
        "the catalogue. Fix: name a provider (or provider/model) listed under providers."
    )


def test_an_unknown_model_of_a_known_provider() -> None:
    line = only_problem(with_policies("- name: p\n  prefer: {providers: [groq/gpt-9]}\n"))
    assert "policy 'p' → prefer.providers[0]: provider 'groq' has no model 'gpt-9'" in line


def test_an_unnamed_policy_is_named_by_its_index() -> None:
    found = problems(with_policies("- {mode: free}\n- {cache: true}\n"))
    assert [line.split(": is")[0] for line in found] == [
        "relay.yaml:11: policies[0] → name",
        "relay.yaml:12: policies[1] → name",
    ]
    assert "is required but missing" in found[0]


def test_every_bad_field_is_reported_with_its_rule() -> None:
    found = problems(
        with_policies("""\
        - name: first
          match: {family: [poetry], colour: red}
          cap: {temperature: 3}
        - name: second
          mode: cheap
        - name: first
          hedge: true
        """)
    )
    text = "\n".join(found)
    assert "policy 'first' → match.family[0]: unknown value; known: chat, coding" in text
    assert "policy 'first' → match.colour: unknown field" in text
    assert "policy 'first' → cap.temperature: must be at most 2" in text
    assert "policy 'second' → mode: unknown value; known: free, auto, paid" in text
    assert "'first' is already the name of the policy at line 11" in text
    assert len(found) == 5


def test_a_policy_must_do_something_and_name_a_target() -> None:
    text = "\n".join(
        problems(
            with_policies("- name: idle\n  match: {family: chat}\n- name: vague\n  prefer: {}\n")
        )
    )
    assert "policy 'idle': has no action. Fix: give at least one of prefer, exclude" in text
    assert "policy 'vague' → prefer: names no target" in text


def test_a_policy_may_not_read_a_credential_header() -> None:
    line = only_problem(
        with_policies("- name: sneaky\n  match: {header: {Authorization: x}}\n  cache: true\n")
    )
    assert "policy 'sneaky' → match.header: a policy may not read header authorization" in line


def test_a_key_is_matched_by_its_owner_id_never_by_the_key() -> None:
    line = only_problem(
        with_policies("- name: vip\n  match: {key: sk-live-secret-key}\n  mode: paid\n")
    )
    assert "policy 'vip' → match.key[0]: does not have the expected form" in line
    assert "sk-live-secret-key" not in line  # a key pasted here is not echoed


def test_code_in_config_is_only_text() -> None:
    """A match holds names and globs: an expression is a model name that matches nothing."""
    catalogue = load(
        with_policies("- name: p\n  match: {model: \"__import__('os')\"}\n  cache: true\n")
    )
    assert catalogue.policies[0].match.model == ["__import__('os')"]


def test_the_commented_example_in_relay_example_yaml_loads() -> None:
    from pathlib import Path

    from relay_core.catalogue.loader import parse_catalogue

    text = (Path(__file__).parents[3] / "relay.example.yaml").read_text(encoding="utf-8")
    head, _, example = text.partition("# policies:\n")
    assert example, "relay.example.yaml has no commented policies example"
    policies = "".join(line.removeprefix("# ") + "\n" for line in example.splitlines())
    catalogue = parse_catalogue(head + "policies:\n" + policies, "relay.example.yaml")
    assert [p.name for p in catalogue.policies] == [
        "json-to-groq",
        "interns-stay-free",
        "deterministic-is-cached",
    ]
