"""The workflow engine: from the visits so far, run the steps that need no model here and
say what comes next. Pure: no I/O, no clock but the one given.

    advance(workflow, input, visits) -> Progress(new visits, then)

``then`` is a :class:`Call` (a model or classify step's chat request, sent as a chat task by
the caller), :class:`Finished` (the run's output) or :class:`Failed` (why). A model step's
answer becomes a visit with :func:`call_visit`; the caller records it and advances again.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import orjson
from pydantic import JsonValue

from relay_core.answers.validate import check_text, validate
from relay_core.dispatch.envelope import Reply
from relay_core.schemas.chat import ChatCompletionRequest
from relay_core.workflow.models import (
    END,
    ClassifyStep,
    ModelStep,
    Step,
    TransformStep,
    Transition,
    ValidateStep,
    Workflow,
)
from relay_core.workflow.run import StepVisit
from relay_core.workflow.templates import TemplateProblem, render

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Call:
    step: ModelStep | ClassifyStep
    index: int  # the visit it will be
    request: ChatCompletionRequest


@dataclass(frozen=True, slots=True)
class Finished:
    output: JsonValue


@dataclass(frozen=True, slots=True)
class Failed:
    error: str


@dataclass(slots=True)
class Progress:
    visits: list[StepVisit] = field(default_factory=list)  # made here, to record in order
    then: Call | Finished | Failed = Failed("not advanced")


def _json_of(text: str) -> JsonValue:
    try:
        value: JsonValue = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value


def _view(v: StepVisit) -> dict[str, JsonValue]:
    return {
        "output": v.output,
        "text": v.text,
        "json": _json_of(v.text) if v.text else None,
        "valid": v.valid,
        "error": v.error,
        "label": v.label,
    }


def context(run_input: JsonValue, visits: Sequence[StepVisit]) -> dict[str, JsonValue]:
    """What a template sees: ``input``, ``steps`` (each step's latest visit) and ``last``."""
    steps: dict[str, JsonValue] = {v.step: _view(v) for v in visits}
    return {"input": run_input, "steps": steps, "last": _view(visits[-1]) if visits else None}


def extract(path: str, ctx: Mapping[str, JsonValue]) -> JsonValue:
    """The value at ``path`` (``steps.gen.json.a.0``); :class:`TemplateProblem` if none."""
    value: JsonValue = dict(ctx)
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif (
            isinstance(value, list)
            and part.lstrip("-").isdigit()
            and -len(value) <= int(part) < len(value)
        ):
            value = value[int(part)]
        else:
            raise TemplateProblem(f"extract {path!r}: nothing at {part!r}")
    return value


def text_of(value: JsonValue) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _inline(
    step: ValidateStep | TransformStep, index: int, ctx: dict[str, JsonValue], now: float
) -> StepVisit:
    base = {
        "index": index,
        "step": step.name,
        "kind": step.kind,
        "started_at": now,
        "ended_at": now,
    }
    if isinstance(step, ValidateStep):
        text = render(step.source, ctx)
        kind = "json_schema" if step.json_schema is not None else "json_object"
        problem = check_text(text, kind, step.json_schema)
        output = _json_of(text) if problem is None else text
        return StepVisit(**base, output=output, text=text, valid=problem is None, error=problem)
    if step.template is not None:
        text = render(step.template, ctx)
        return StepVisit(**base, output=text, text=text)
    if step.join is not None:
        text = step.separator.join(render(t, ctx) for t in step.join)
        return StepVisit(**base, output=text, text=text)
    assert step.extract is not None
    value = extract(step.extract, ctx)
    return StepVisit(**base, output=value, text=text_of(value))


def request_of(step: ModelStep | ClassifyStep, ctx: dict[str, JsonValue]) -> ChatCompletionRequest:
    messages = [{"role": m.role, "content": render(m.content, ctx)} for m in step.messages]
    fields: dict[str, object] = {"model": step.model, "messages": messages}
    if step.temperature is not None:
        fields["temperature"] = step.temperature
    if step.max_tokens is not None:
        fields["max_tokens"] = step.max_tokens
    if isinstance(step, ModelStep) and step.response_format is not None:
        fields["response_format"] = step.response_format
    return ChatCompletionRequest.model_validate(fields)


def _next(wf: Workflow, step: Step, visit: StepVisit, counts: Counter[str]) -> str | Failed:
    transitions = step.next or [Transition(to=wf.after(step.name))]
    full: list[str] = []
    for t in transitions:
        if not t.condition.holds(visit.valid, visit.label):
            continue
        if t.to == END or counts[t.to] < wf.visits_allowed(t.to):
            return t.to
        full.append(t.to)
    if full:
        bound = ", ".join(f"{n!r} ({wf.visits_allowed(n)})" for n in full)
        return Failed(
            f"step {step.name!r}: its transitions lead to steps visited their max_visits "
            f"times: {bound}"
        )
    said = f"valid={visit.valid}, label={visit.label}"
    return Failed(f"step {step.name!r}: no transition holds ({said})")


def _output(wf: Workflow, run_input: JsonValue, visits: Sequence[StepVisit]) -> JsonValue:
    if wf.output is not None:
        return render(wf.output, context(run_input, visits))
    return visits[-1].output if visits else None


def advance(
    wf: Workflow, run_input: JsonValue, visits: Sequence[StepVisit], clock: Clock = time.time
) -> Progress:
    """Run what needs no model from where ``visits`` left off, up to the next call or the end."""
    done = list(visits)
    progress = Progress()
    counts = Counter(v.step for v in done)
    if not done:
        current: str | Failed = wf.first
    else:
        last = done[-1]
        if last.failed:
            progress.then = Failed(f"step {last.step!r} failed: {last.error}")
            return progress
        current = _next(wf, wf.step(last.step), last, counts)
    try:
        while True:
            if isinstance(current, Failed):
                progress.then = current
                return progress
            if current == END:
                progress.then = Finished(_output(wf, run_input, done))
                return progress
            if len(done) >= wf.max_steps:
                progress.then = Failed(f"the run reached the workflow's max_steps ({wf.max_steps})")
                return progress
            step = wf.step(current)
            ctx = context(run_input, done)
            if isinstance(step, ModelStep | ClassifyStep):
                progress.then = Call(step, len(done), request_of(step, ctx))
                return progress
            visit = _inline(step, len(done), ctx, clock())
            done.append(visit)
            progress.visits.append(visit)
            counts[step.name] += 1
            current = _next(wf, step, visit, counts)
    except TemplateProblem as exc:
        progress.then = Failed(f"step {current!r}: {exc}")
        return progress


def pick_label(text: str, labels: Sequence[str], default: str | None) -> str | None:
    """The label an answer names: a JSON ``{"label": ...}``'s, else the label named first
    in the text (whole words, any case), else ``default``."""
    document = _json_of(text)
    if isinstance(document, dict) and document.get("label") in labels:
        found = document["label"]
        assert isinstance(found, str)
        return found
    best: tuple[int, str] | None = None
    for label in labels:
        hit = re.search(rf"(?<![\w-]){re.escape(label)}(?![\w-])", text, re.IGNORECASE)
        if hit is not None and (best is None or hit.start() < best[0]):
            best = (hit.start(), label)
    return best[1] if best is not None else default


def call_visit(
    call_step: ModelStep | ClassifyStep, index: int, reply: Reply, started: float, ended: float
) -> StepVisit:
    """The visit a call's final reply makes."""
    base = StepVisit(
        index=index,
        step=call_step.name,
        kind=call_step.kind,
        provider=reply.provider,
        model=reply.model,
        attempts=reply.attempts,
        checks=[c.header() for c in reply.checks],
        failures=reply.failures,
        started_at=started,
        ended_at=ended,
    )
    if not reply.ok or reply.completion is None or not reply.completion.choices:
        error = reply.error.message if reply.error else "no answer"
        return base.model_copy(update={"error": error, "failed": True})
    text = reply.completion.choices[0].message.content or ""
    update: dict[str, object] = {"text": text, "output": text}
    if isinstance(call_step, ClassifyStep):
        update["label"] = pick_label(text, call_step.labels, call_step.default)
    elif call_step.response_format is not None:
        result = validate(reply.completion, call_step.response_format)
        update["valid"], update["error"] = result.ok, result.error
        if result.ok:
            update["output"] = _json_of(text)
    return base.model_copy(update=update)
