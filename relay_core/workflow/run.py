"""A workflow run as data: its record, each step visit, and the API's view of them."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field, JsonValue

from relay_core.errors import ErrorInfo
from relay_core.workflow.models import ClassifyStep, ModelStep, Workflow


class RunStatus(StrEnum):
    running = "running"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"  # its batch was cancelled before the run ended


class LineRef(BaseModel):
    """The batch line a run answers (a batch whose lines' url is ``/v1/workflows/<name>``)."""

    batch_id: str
    index: int
    custom_id: str


class StepVisit(BaseModel):
    """One visit of one step: what it gave, and for a call, who answered and how."""

    index: int  # its place in the run, from 0
    step: str
    kind: str
    output: JsonValue = None  # the text, or the JSON value (a JSON answer, an extract)
    text: str = ""
    valid: bool | None = None  # a validate step's verdict, or a JSON answer's
    error: str | None = None  # the validator's reason, or why the call failed
    label: str | None = None  # a classify step's
    failed: bool = False  # the call had no answer (``error`` says why): the run fails
    provider: str | None = None
    model: str | None = None
    attempts: int = 0  # upstream calls (repairs and failovers included)
    checks: list[str] = Field(default_factory=list)  # the answer checks, as the header says
    failures: list[ErrorInfo] = Field(default_factory=list)  # earlier attempts' (the route)
    started_at: float = 0.0
    ended_at: float = 0.0


class RunRecord(BaseModel):
    """A run, as stored (its visits are stored beside it, one field each)."""

    id: str
    workflow: Workflow  # as it was when the run began (a catalogue reload does not move it)
    owner: str
    input: JsonValue = None
    status: RunStatus = RunStatus.running
    created_at: float
    ended_at: float | None = None
    output: JsonValue = None
    error: str | None = None
    kind: Literal["interactive", "batch"] = "interactive"
    deadline: float  # the step calls' deadline (a batch's window; else set per call)
    line: LineRef | None = None


class RunObject(BaseModel):
    """What ``GET /v1/workflows/{name}/runs/{id}`` answers."""

    id: str
    object: Literal["workflow.run"] = "workflow.run"
    workflow: str
    status: RunStatus
    created_at: int
    ended_at: int | None = None
    input: JsonValue = None
    output: JsonValue = None
    error: str | None = None
    steps: list[StepVisit] = Field(default_factory=list)

    @classmethod
    def of(cls, run: RunRecord, visits: list[StepVisit]) -> RunObject:
        return cls(
            id=run.id,
            workflow=run.workflow.name,
            status=run.status,
            created_at=int(run.created_at),
            ended_at=None if run.ended_at is None else int(run.ended_at),
            input=run.input,
            output=run.output,
            error=run.error,
            steps=visits,
        )


class StepSummary(BaseModel):
    """A step as ``GET /v1/workflows`` lists it."""

    name: str
    kind: str
    model: str | None = None  # a model or classify step's (as the workflow names it)


class WorkflowObject(BaseModel):
    """One workflow of the catalogue, as ``GET /v1/workflows`` lists it."""

    name: str
    object: Literal["workflow"] = "workflow"
    description: str | None = None
    steps: list[StepSummary]
    input_schema: dict[str, JsonValue] | None = None

    @classmethod
    def of(cls, wf: Workflow) -> WorkflowObject:
        steps = [
            StepSummary(
                name=s.name,
                kind=s.kind,
                model=s.model if isinstance(s, ModelStep | ClassifyStep) else None,
            )
            for s in wf.steps
        ]
        return cls(
            name=wf.name, description=wf.description, steps=steps, input_schema=wf.input_schema
        )


class WorkflowList(BaseModel):
    object: Literal["list"] = "list"
    data: list[WorkflowObject]
