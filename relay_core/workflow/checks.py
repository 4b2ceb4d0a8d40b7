"""A workflow's rules, checked at load time: each problem one sentence naming the workflow,
the step and the rule (``workflow 'triage' → step 'route' → next[1].when: ...``).

Checked: step names unique (and not ``end``); ``start`` and every transition's ``to`` name a
step; every condition parses and fits its step (``valid``/``invalid`` after a validate step or
a model step with a ``response_format``; ``label`` after a classify step, naming its labels);
every template parses and reads only steps the workflow has; ``extract`` paths start at
``input``, ``last`` or a step; schemas are JSON Schemas; and every loop is bounded: some step
of each cycle in the step graph sets ``max_visits``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from relay_core.answers.validate import schema_problem
from relay_core.workflow.conditions import ConditionError, Shape
from relay_core.workflow.templates import TemplateProblem, steps_named

if TYPE_CHECKING:
    from relay_core.workflow.models import Step, Workflow


def workflow_problems(wf: Workflow) -> list[str]:
    from relay_core.workflow.models import END

    names = [s.name for s in wf.steps]
    out: list[str] = []
    where = f"workflow {wf.name!r}"
    dupes = sorted({n for n in names if names.count(n) > 1})
    out += [f"{where} → step {n!r}: the name appears twice" for n in dupes]
    if END in names:
        out.append(f"{where} → step {END!r}: the name is reserved for the end of the run")
    if wf.start is not None and wf.start not in names:
        out.append(f"{where} → start: no step {wf.start!r} ({_known(names)})")
    for step in wf.steps:
        out += [f"{where} → step {step.name!r} → {p}" for p in _step_problems(step, names)]
    if wf.output is not None:
        out += [f"{where} → output: {p}" for p in _template_problems(wf.output, names)]
    if not out:  # the graph is only meaningful once every name resolves
        out += [f"{where} → {p}" for p in _unbounded_loops(wf)]
    return out


def _known(names: list[str]) -> str:
    return f"the steps are {', '.join(names)}; or end"


def _step_problems(step: Step, names: list[str]) -> Iterator[str]:
    from relay_core.workflow.models import END, ModelStep, TransformStep, ValidateStep

    for i, t in enumerate(step.next):
        if t.to != END and t.to not in names:
            yield f"next[{i}].to: no step {t.to!r} ({_known(names)})"
        try:
            condition = t.condition
        except ConditionError as exc:
            yield f"next[{i}].when: {exc}"
            continue
        why = _misfit(step, condition.shape, condition.labels)
        if why is not None:
            yield f"next[{i}].when: {t.when!r} {why}"
    for field, text in step.templates():
        yield from (f"{field}: {p}" for p in _template_problems(text, names))
    if isinstance(step, ModelStep):
        problem = schema_problem(step.response_format)
        if problem is not None:
            yield f"response_format: {problem.removeprefix('response_format.')}"
    if isinstance(step, ValidateStep) and step.json_schema is not None:
        wrapped = {"type": "json_schema", "json_schema": {"schema": step.json_schema}}
        problem = schema_problem(wrapped)
        if problem is not None:
            yield f"json_schema: {problem.removeprefix('response_format.json_schema.schema ')}"
    if isinstance(step, TransformStep) and step.extract is not None:
        yield from (f"extract: {p}" for p in _path_problems(step.extract, names))


def _misfit(step: Step, shape: Shape, labels: frozenset[str]) -> str | None:
    from relay_core.workflow.models import ClassifyStep, ModelStep, ValidateStep

    if shape in (Shape.valid, Shape.invalid):
        checks = isinstance(step, ValidateStep) or (
            isinstance(step, ModelStep) and step.response_format is not None
        )
        return None if checks else "needs a validate step (or a model step with a response_format)"
    if shape is Shape.label:
        if not isinstance(step, ClassifyStep):
            return "needs a classify step (only a classifier gives a label)"
        unknown = sorted(labels - set(step.labels))
        if unknown:
            return f"names {', '.join(unknown)}, not among its labels ({', '.join(step.labels)})"
    return None


def _template_problems(text: str, names: list[str]) -> Iterator[str]:
    try:
        read = steps_named(text)
    except TemplateProblem as exc:
        yield str(exc)
        return
    for name in sorted(read - set(names)):
        yield f"the template reads steps.{name}, but there is no step {name!r} ({_known(names)})"


def _path_problems(path: str, names: list[str]) -> Iterator[str]:
    parts = path.split(".")
    if parts[0] not in ("input", "last", "steps") or any(not p for p in parts):
        yield f"{path!r} must start with input, last or steps.<name> (dots between keys)"
    elif parts[0] == "steps" and (len(parts) < 2 or parts[1] not in names):
        yield f"{path!r} names no step of this workflow ({_known(names)})"


def _edges(wf: Workflow) -> dict[str, list[str]]:
    from relay_core.workflow.models import END

    graph: dict[str, list[str]] = {}
    for step in wf.steps:
        targets = [t.to for t in step.next] if step.next else [wf.after(step.name)]
        graph[step.name] = [t for t in targets if t != END]
    return graph


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """The strongly connected components that hold a cycle (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part: list[str] = []
            while True:
                w = stack.pop()
                on.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1 or v in graph[v]:
                found.append(sorted(part))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def loops(wf: Workflow) -> list[list[str]]:
    """The groups of steps that lie on loops together (the graph's cyclic components)."""
    return _cycles(_edges(wf))


def _unbounded_loops(wf: Workflow) -> Iterator[str]:
    for part in loops(wf):
        if all(wf.step(n).max_visits is None for n in part):
            yield (
                f"steps {', '.join(repr(n) for n in part)} form a loop with no bound: "
                "give one of them max_visits"
            )
