"""Workflows as typed data: the ``workflows:`` list of the catalogue YAML, or the
``workflow`` posted with a run (docs/workflows.md).

A workflow is a list of steps, each of one kind:

    model      a chat request made of message templates (a normal chat task: same limits,
               breakers and failover as any request)
    classify   a chat request whose answer is read as one of ``labels``
    validate   a JSON document (a template's text) checked against a JSON Schema
    transform  a template, a JSON value taken out of an earlier step, or templates joined

and, after each, the transitions tried in order (the first whose condition holds and whose
step may still be visited is taken; none given: the next step in the list, or the end).
Nothing in a workflow is code: templates run in Jinja's sandbox, conditions are a grammar of
four shapes (:mod:`relay_core.workflow.conditions`). Every rule is checked when the workflow
is loaded (:mod:`relay_core.workflow.checks`): a problem names the workflow, step and rule.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator
from pydantic_core import PydanticCustomError

from relay_core.workflow.conditions import Condition, parse_condition

END = "end"  # the transition target that ends the run
# A step name is an identifier, so a template can read ``steps.<name>``.
StepName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$", max_length=64)]
Label = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", max_length=64)]
# The most steps any run may visit, whatever a workflow says (each is a task, most a call).
MAX_STEPS_CAP = 200


class Transition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    when: str = "always"  # see relay_core.workflow.conditions
    to: str  # a step's name, or ``end``

    @property
    def condition(self) -> Condition:
        return parse_condition(self.when)


class MessageTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["system", "developer", "user", "assistant"] = "user"
    content: str = Field(min_length=1)  # a template (relay_core.workflow.templates)


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: StepName
    # How many times a run may visit this step. Each loop must be bounded by one of its
    # steps; left out, a step on a loop may be visited as often as the run's max_steps allow,
    # any other step once.
    max_visits: PositiveInt | None = None
    next: list[Transition] = Field(default_factory=list)


class _Call(_Step):
    model: str = Field(min_length=1)  # routed as a chat request's model is
    messages: list[MessageTemplate] = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: PositiveInt | None = None

    def templates(self) -> list[tuple[str, str]]:
        return [(f"messages[{i}].content", m.content) for i, m in enumerate(self.messages)]


class ModelStep(_Call):
    kind: Literal["model"]
    response_format: dict[str, Any] | None = None  # as a chat request's (docs/answers.md)


class ClassifyStep(_Call):
    kind: Literal["classify"]
    labels: list[Label] = Field(min_length=1)
    # The label when the answer names none of ``labels`` (None: the step has no label then).
    default: Label | None = None


class ValidateStep(_Step):
    kind: Literal["validate"]
    source: str = "{{ last.text }}"  # the text to check (a template)
    # The JSON Schema the document must meet (none: any JSON object).
    json_schema: dict[str, Any] | None = None

    def templates(self) -> list[tuple[str, str]]:
        return [("source", self.source)]


class TransformStep(_Step):
    kind: Literal["transform"]
    template: str | None = None  # the output is the rendered text
    # A JSON value out of the context: ``steps.<name>.json.a.b.0``, ``input.x`` or
    # ``last.json.y`` (dots between keys and list indices).
    extract: str | None = None
    join: list[str] | None = None  # templates, rendered and joined with ``separator``
    separator: str = "\n"

    @model_validator(mode="after")
    def _one_operation(self) -> TransformStep:
        given = [n for n in ("template", "extract", "join") if getattr(self, n) is not None]
        if len(given) != 1:
            raise PydanticCustomError(
                "transform_operation",
                "a transform step takes exactly one of template, extract or join (got {got})",
                {"got": ", ".join(given) or "none", "fix": "keep one of them"},
            )
        return self

    def templates(self) -> list[tuple[str, str]]:
        if self.template is not None:
            return [("template", self.template)]
        return [(f"join[{i}]", t) for i, t in enumerate(self.join or [])]


Step = Annotated[
    ModelStep | ClassifyStep | ValidateStep | TransformStep, Field(discriminator="kind")
]
CALL_KINDS = ("model", "classify")


class Workflow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)
    description: str | None = None
    # The JSON Schema a run's input must meet (none: any JSON value).
    input_schema: dict[str, Any] | None = None
    start: str | None = None  # the first step (default: the first listed)
    steps: list[Step] = Field(min_length=1)
    # The most step visits a run may make (every step's max_visits bounds it too).
    max_steps: int = Field(default=20, ge=1, le=MAX_STEPS_CAP)
    output: str | None = None  # the run's output, a template (default: the last step's)

    @model_validator(mode="after")
    def _rules(self) -> Workflow:
        from relay_core.workflow.checks import workflow_problems

        problems = workflow_problems(self)
        if problems:
            raise PydanticCustomError(
                "workflow_invalid",
                "{problems}",
                {"problems": "; ".join(problems), "fix": "see docs/workflows.md"},
            )
        return self

    @functools.cached_property
    def looped(self) -> frozenset[str]:
        """The steps that lie on a loop of the step graph."""
        from relay_core.workflow.checks import loops

        return frozenset(n for part in loops(self) for n in part)

    def visits_allowed(self, name: str) -> int:
        """How often a run may visit step ``name`` (see ``max_visits``)."""
        bound = self.step(name).max_visits
        if bound is not None:
            return bound
        return self.max_steps if name in self.looped else 1

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)

    def first_model(self) -> str | None:
        """The model of the first call step listed (what a batch of runs is paced on)."""
        calls = [s for s in self.steps if isinstance(s, ModelStep | ClassifyStep)]
        return calls[0].model if calls else None

    @property
    def first(self) -> str:
        return self.start or self.steps[0].name

    def after(self, name: str) -> str:
        """Where a step with no transitions leads: the next listed step, or the end."""
        names = [s.name for s in self.steps]
        i = names.index(name)
        return names[i + 1] if i + 1 < len(names) else END
