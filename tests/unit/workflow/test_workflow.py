"""Workflows: what loads, every load-time error naming the workflow, step and rule, the
conditions, the transitions and the loop bounds (the engine, without Redis or Celery)."""

from __future__ import annotations

import copy
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from relay_core.dispatch.envelope import Reply
from relay_core.schemas.chat import ChatCompletion
from relay_core.workflow.conditions import ConditionError, Shape, parse_condition
from relay_core.workflow.engine import Call, Failed, Finished, advance, call_visit, pick_label
from relay_core.workflow.models import Workflow
from relay_core.workflow.run import StepVisit
from tests.support.workflows import SUPPORT_PATH, support_workflow
from tests.unit.catalogue.conftest import GROQ, load, only_problem


def problem_of(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        Workflow.model_validate(data)
    (error,) = caught.value.errors()
    return str(error["msg"])


def with_workflows(*workflows: dict[str, Any]) -> str:
    listed = textwrap.indent(yaml.safe_dump(list(workflows), width=1000), "  ")
    return "providers:\n" + GROQ + "workflows:\n" + listed


def support() -> dict[str, Any]:
    return copy.deepcopy(support_workflow())


# ---- conditions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "valid", "label", "holds"),
    [
        ("always", None, None, True),
        ("valid", True, None, True),
        ("valid", False, None, False),
        ("valid", None, None, False),  # not checked: never valid
        ("invalid", False, None, True),
        ("invalid", None, None, False),
        ("label == billing", None, "billing", True),
        ("label==billing", None, "technical", False),
        ("label != billing", None, "technical", True),
        ("label != billing", None, None, False),  # no label: no label condition holds
        ("label in [a, 'b c']", None, "b c", True),
        ("label not in [a, b]", None, "a", False),
        ("label not in [a, b]", None, "c", True),
    ],
)
def test_conditions_hold_as_written(
    text: str, valid: bool | None, label: str | None, holds: bool
) -> None:
    assert parse_condition(text).holds(valid, label) is holds


@pytest.mark.parametrize(
    "text",
    [
        "",
        "true",
        "label = x",
        "label == ",
        "valid and invalid",
        "label in []",
        "label in [a,",
        "__import__('os')",
        "label == x or 1",
        "{{ x }}",
    ],
)
def test_what_is_not_a_condition_does_not_parse(text: str) -> None:
    with pytest.raises(ConditionError, match="is not a condition"):
        parse_condition(text)


def test_a_condition_reads_back_as_written() -> None:
    assert str(parse_condition("label   in [b,a]")) == "label in [a, b]"
    assert parse_condition(" valid ").shape is Shape.valid


# ---- loading -------------------------------------------------------------------------------


def test_the_support_workflow_loads_from_the_catalogue() -> None:
    catalogue = load(with_workflows(support()))
    wf = catalogue.workflow("support")
    assert wf is not None and wf.first == "generate"
    assert wf.looped == {"validate", "repair"}
    assert wf.visits_allowed("repair") == 2  # its own bound
    assert wf.visits_allowed("validate") == wf.max_steps  # on the loop, bounded by repair
    assert wf.visits_allowed("classify") == 1


def test_the_docs_example_loads_and_is_the_tests_workflow() -> None:
    text = (Path(__file__).resolve().parents[3] / "docs" / "workflows.md").read_text()
    block = re.search(r"^```yaml\n(workflows:.*?)^```", text, re.DOTALL | re.MULTILINE)
    assert block is not None
    catalogue = load("providers:\n" + GROQ + block.group(1))
    (wf,) = catalogue.workflows
    assert [s.name for s in wf.steps] == [s["name"] for s in support()["steps"]]


def test_a_catalogue_error_names_the_workflow_step_and_rule() -> None:
    data = support()
    data["steps"][1]["next"][0]["when"] = "valid == yes"
    text = with_workflows(data)
    line = only_problem(text)
    assert "workflow 'support' → step 'validate' → next[0].when" in line
    assert "'valid == yes' is not a condition" in line
    assert line.startswith("relay.yaml:")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["steps"][1]["next"].__setitem__(0, {"when": "valid", "to": "nowhere"}),
            "step 'validate' → next[0].to: no step 'nowhere'",
        ),
        (
            lambda d: d["steps"][3]["next"].__setitem__(
                0, {"when": "label == refund", "to": "billing"}
            ),
            "step 'classify' → next[0].when: 'label == refund' names refund, not among its labels",
        ),
        (
            lambda d: d["steps"][4].__setitem__("next", [{"when": "valid", "to": "end"}]),
            "step 'billing' → next[0].when: 'valid' needs a validate step",
        ),
        (
            lambda d: d["steps"][1]["next"].__setitem__(0, {"when": "label == x", "to": "end"}),
            "step 'validate' → next[0].when: 'label == x' needs a classify step",
        ),
        (
            lambda d: d["steps"][2].pop("max_visits"),
            "steps 'repair', 'validate' form a loop with no bound: give one of them max_visits",
        ),
        (
            lambda d: d["steps"][0]["messages"][0].__setitem__("content", "{{ steps.nope.text }}"),
            "step 'generate' → messages[0].content: the template reads steps.nope",
        ),
        (
            lambda d: d["steps"][0]["messages"][0].__setitem__("content", "{{ input.question "),
            "step 'generate' → messages[0].content: template does not parse",
        ),
        (
            lambda d: d["steps"][5].__setitem__("extract", "steps.gone.json"),
            "step 'technical' → extract: 'steps.gone.json' names no step",
        ),
        (
            lambda d: d["steps"][1].__setitem__("json_schema", {"type": "nonsense"}),
            "step 'validate' → json_schema: is not a valid JSON Schema",
        ),
        (lambda d: d.__setitem__("start", "middle"), "start: no step 'middle'"),
        (
            lambda d: d["steps"].append({"name": "end", "kind": "transform", "template": "x"}),
            "step 'end': the name is reserved",
        ),
        (
            lambda d: d["steps"].append(dict(d["steps"][4])),
            "step 'billing': the name appears twice",
        ),
    ],
)
def test_every_rule_is_checked_at_load(change: Any, expected: str) -> None:
    data = support()
    change(data)
    message = problem_of(data)
    assert message.startswith("workflow 'support' → ")
    assert expected in message


def test_a_self_loop_without_a_bound_is_refused() -> None:
    data = {
        "name": "spin",
        "steps": [
            {"name": "again", "kind": "transform", "template": "x", "next": [{"to": "again"}]}
        ],
    }
    assert "steps 'again' form a loop with no bound" in problem_of(data)


def test_a_transform_takes_one_operation() -> None:
    data = {
        "name": "t",
        "steps": [{"name": "a", "kind": "transform", "template": "x", "join": ["y"]}],
    }
    assert "exactly one of template, extract or join (got template, join)" in problem_of(data)


# ---- the engine ----------------------------------------------------------------------------


def answer(text: str, *, provider: str = "p", attempts: int = 1) -> Reply:
    completion = ChatCompletion.model_validate(
        {
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
        }
    )
    return Reply(
        id="x", ok=True, completion=completion, provider=provider, model="m", attempts=attempts
    )


def drive(
    wf: Workflow, run_input: Any, answers: dict[str, list[str]]
) -> tuple[list[StepVisit], Finished | Failed]:
    """Run ``wf`` to its end, each call answered with the next text given for its step."""
    visits: list[StepVisit] = []
    while True:
        progress = advance(wf, run_input, visits, lambda: 0.0)
        visits += progress.visits
        then = progress.then
        if not isinstance(then, Call):
            return visits, then
        assert [v.index for v in visits] == list(range(len(visits)))
        assert then.index == len(visits)
        visits.append(
            call_visit(then.step, then.index, answer(answers[then.step.name].pop(0)), 0, 0)
        )


def test_a_run_goes_through_repair_and_the_label_picks_the_answer() -> None:
    wf = Workflow.model_validate(support())
    visits, end = drive(
        wf,
        {"question": "my billing is wrong"},
        {
            "generate": ['{"answer": "a draft"}'],
            "repair": ['{"answer": "the final word"}'],
            "classify": ["This is about billing."],
        },
    )
    assert [v.step for v in visits] == SUPPORT_PATH["billing"]
    assert [v.valid for v in visits if v.step == "validate"] == [False, True]
    assert "does not match 'final'" in (visits[1].error or "")
    assert visits[4].label == "billing"
    assert end == Finished("BILLING: the final word")


def test_the_request_of_a_step_reads_the_input_and_earlier_steps() -> None:
    wf = Workflow.model_validate(support())
    first = advance(wf, {"question": "Q?"}, [])
    assert isinstance(first.then, Call)
    assert first.then.request.messages[0].content == "Draft a reply to: Q?"
    assert first.then.request.response_format == {"type": "json_object"}
    draft = call_visit(first.then.step, 0, answer('{"answer": "draft"}'), 0, 0)
    second = advance(wf, {"question": "Q?"}, [draft])
    assert [v.step for v in second.visits] == ["validate"]
    assert isinstance(second.then, Call) and second.then.step.name == "repair"
    assert "the draft failed: the JSON does not match" in str(
        second.then.request.messages[0].content
    )


def test_the_loop_ends_at_its_bound_with_a_reason() -> None:
    wf = Workflow.model_validate(support())
    visits, end = drive(
        wf,
        {"question": "q"},
        {"generate": ['{"answer": "x"}'], "repair": ['{"answer": "y"}', '{"answer": "z"}']},
    )
    assert [v.step for v in visits] == [
        "generate",
        "validate",
        "repair",
        "validate",
        "repair",
        "validate",
    ]
    assert isinstance(end, Failed)
    assert "step 'validate'" in end.error and "'repair' (2)" in end.error


def test_max_steps_bounds_a_run() -> None:
    data = support()
    data["max_steps"] = 3
    _, end = drive(
        Workflow.model_validate(data),
        {"question": "q"},
        {"generate": ['{"answer": "x"}'], "repair": ['{"answer": "y"}']},
    )
    assert end == Failed("the run reached the workflow's max_steps (3)")


def test_no_transition_holding_fails_the_run_never_falls_through() -> None:
    data = {
        "name": "pick",
        "steps": [
            {
                "name": "c",
                "kind": "classify",
                "model": "chat",
                "labels": ["a", "b"],
                "messages": [{"content": "x"}],
                "next": [{"when": "label == a", "to": "end"}],
            },
        ],
    }
    _, end = drive(Workflow.model_validate(data), None, {"c": ["neither"]})
    assert end == Failed("step 'c': no transition holds (valid=None, label=None)")


def test_a_failed_call_fails_the_run() -> None:
    wf = Workflow.model_validate(support())
    first = advance(wf, {"question": "q"}, [])
    assert isinstance(first.then, Call)
    failed = Reply(id="x", ok=False, attempts=3)
    visit = call_visit(first.then.step, 0, failed, 0, 0)
    assert visit.failed
    assert advance(wf, {"question": "q"}, [visit]).then == Failed(
        "step 'generate' failed: no answer"
    )


def test_a_template_that_fails_to_render_fails_the_run() -> None:
    data = {
        "name": "t",
        "steps": [{"name": "a", "kind": "transform", "template": "{{ input.missing }}"}],
    }
    end = advance(Workflow.model_validate(data), {}, []).then
    assert isinstance(end, Failed) and end.error.startswith("step 'a': template failed")


def test_the_sandbox_refuses_attribute_tricks() -> None:
    data = {
        "name": "t",
        "steps": [{"name": "a", "kind": "transform", "template": "{{ input.__class__.__mro__ }}"}],
    }
    end = advance(Workflow.model_validate(data), {}, []).then
    assert isinstance(end, Failed)


def test_join_and_output_templates() -> None:
    data = {
        "name": "t",
        "output": "{{ steps.j.text | upper }}",
        "steps": [
            {
                "name": "j",
                "kind": "transform",
                "join": ["{{ input.a }}", "{{ input.b | json }}"],
                "separator": "+",
            }
        ],
    }
    assert advance(Workflow.model_validate(data), {"a": "x", "b": [1]}, []).then == Finished(
        "X+[1]"
    )


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ('{"label": "b"}', "b"),
        ("It is B, not a.", "b"),  # the first named, any case
        ("about ab and abc", None),  # whole words only
        ("billing-ish", None),
    ],
)
def test_labels_are_read_from_the_answer(text: str, label: str | None) -> None:
    assert pick_label(text, ["a", "b", "billing"], None) == label
