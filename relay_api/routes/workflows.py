"""Workflows (docs/workflows.md): ``GET /v1/workflows`` lists the catalogue's;
``POST /v1/workflows/{name}/runs`` starts one and answers its id at once;
``GET /v1/workflows/{name}/runs/{run_id}`` follows it (its status and every step visited,
with its output, attempts and route). A run is visible only to the
gateway key that started it, as a batch is."""

from __future__ import annotations

import time

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, JsonValue

from relay_api.deps import OwnerDep, StateDep
from relay_api.state import ApiState
from relay_core.answers.validate import check_text
from relay_core.dispatch.publish import publish_envelope
from relay_core.errors import InvalidRequest, NotFound
from relay_core.workflow.engine import text_of
from relay_core.workflow.models import Workflow
from relay_core.workflow.route import StepRouter
from relay_core.workflow.run import RunObject, RunRecord, WorkflowList, WorkflowObject
from relay_core.workflow.runner import WorkflowRunner
from relay_core.workflow.store import RunStore, new_run_id

router = APIRouter()


class StartRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: JsonValue = None
    # A workflow posted with the run (named as the path names it), instead of the catalogue's.
    workflow: Workflow | None = None


def run_store(state: ApiState) -> RunStore:
    s = state.settings
    return RunStore(state.redis, s.key_prefix, s.workflow_run_ttl_s)


def step_router(state: ApiState) -> StepRouter:
    return StepRouter(
        state.settings, state.providers, state.limiter, state.breaker, state.catalogue.policies
    )


def chosen_workflow(state: ApiState, name: str, posted: Workflow | None) -> Workflow:
    if posted is not None:
        if posted.name != name:
            raise InvalidRequest(
                f"The posted workflow is named {posted.name!r}, the path {name!r}: make them one.",
                param="workflow.name",
            )
        return posted
    found = state.catalogue.workflow(name)
    if found is None:
        raise NotFound(
            f"No workflow {name!r} in the catalogue (post one as 'workflow' with the run).",
            param="name",
        )
    return found


def check_input(wf: Workflow, value: JsonValue) -> None:
    if wf.input_schema is None:
        return
    problem = check_text(text_of(value), "json_schema", wf.input_schema)
    if problem is not None:
        raise InvalidRequest(
            f"The input does not fit the workflow's input_schema: {problem}", param="input"
        )


@router.get("/v1/workflows")
async def list_workflows(state: StateDep, _owner: OwnerDep) -> WorkflowList:
    """The workflows the catalogue defines, in its order (posted ones are not kept)."""
    return WorkflowList(data=[WorkflowObject.of(w) for w in state.catalogue.workflows])


@router.post("/v1/workflows/{name}/runs")
async def start_run(name: str, body: StartRun, state: StateDep, owner: OwnerDep) -> RunObject:
    wf = chosen_workflow(state, name, body.workflow)
    check_input(wf, body.input)
    routes = step_router(state)
    routes.check(wf)  # a step whose model nobody serves: the chat request's 404, now
    now = time.time()
    run = RunRecord(
        id=new_run_id(),
        workflow=wf,
        owner=owner,
        input=body.input,
        created_at=now,
        deadline=now + state.settings.request_timeout_s,
    )
    store = run_store(state)
    await store.create(run)
    first = await WorkflowRunner(store, routes).start(run)
    if first is not None:
        await publish_envelope(state.redis, state.settings.key_prefix, first)
    return RunObject.of(await store.owned(name, run.id, owner), await store.visits(run.id))


@router.get("/v1/workflows/{name}/runs/{run_id}")
async def get_run(name: str, run_id: str, state: StateDep, owner: OwnerDep) -> RunObject:
    store = run_store(state)
    run = await store.owned(name, run_id, owner)
    return RunObject.of(run, await store.visits(run_id))
