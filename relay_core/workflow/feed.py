"""A batch of workflow runs: each line of a ``/v1/workflows/<name>`` batch starts a run.

The feeder claims and paces the lines as any batch's; for each, :meth:`RunLines.start`
stores a run whose id names the batch and the line, with the batch's window as the deadline
of every step's call, and returns its first call's envelope (a chat task of kind ``batch``).
A line sent again (its worker died, or its sign of life lapsed) finds its run and resumes it
from its last recorded visit (:meth:`~relay_core.workflow.runner.WorkflowRunner.resume`).
When the run ends, its record is the line's one result (:mod:`relay_core.workflow.lines`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import orjson

from relay_core.answers.validate import check_text
from relay_core.batch.models import workflow_name
from relay_core.batch.store.record import BatchRecord
from relay_core.dispatch.envelope import Envelope
from relay_core.workflow.engine import text_of
from relay_core.workflow.models import Workflow
from relay_core.workflow.run import LineRef, RunRecord, RunStatus
from relay_core.workflow.runner import WorkflowRunner
from relay_core.workflow.store import RUN_PREFIX


def line_run_id(batch_id: str, index: int) -> str:
    return f"{RUN_PREFIX}{batch_id}_{index}"


class RunLines:
    def __init__(self, runner: WorkflowRunner, workflows: Mapping[str, Workflow]) -> None:
        self.runner = runner
        self.workflows = workflows

    def runs(self, batch: BatchRecord) -> Workflow | None:
        """The workflow a batch's lines run (None: a chat batch)."""
        name = workflow_name(batch.endpoint)
        return None if name is None else self.workflows.get(name)

    async def start(
        self, batch: BatchRecord, wf: Workflow, index: int, custom_id: str, raw: bytes
    ) -> Envelope | None:
        """Start line ``index``'s run, or resume it when it exists (the line was sent again);
        the call to send (None: the run ended, and its line was recorded)."""
        value = orjson.loads(raw)["body"]["input"]
        now = time.time()
        run = RunRecord(
            id=line_run_id(batch.id, index),
            workflow=wf,
            owner=batch.owner,
            input=value,
            created_at=now,
            kind="batch",
            deadline=batch.expires_at_exact,
            line=LineRef(batch_id=batch.id, index=index, custom_id=custom_id),
        )
        if not await self.runner.store.create(run):
            # Sent again (its worker died, or its sign of life lapsed): from its last step.
            existing = await self.runner.store.run(run.id)
            return None if existing is None else await self.runner.resume(existing)
        problem = (
            None
            if wf.input_schema is None
            else check_text(text_of(value), "json_schema", wf.input_schema)
        )
        if problem is not None:
            error = f"the input does not fit the workflow's input_schema: {problem}"
            failed = run.model_copy(
                update={"status": RunStatus.failed, "ended_at": now, "error": error}
            )
            await self.runner.store.record(run, [], updated=failed)
            if self.runner.lines is not None:
                await self.runner.lines.ended(failed, [])
            return None
        return await self.runner.start(run)
