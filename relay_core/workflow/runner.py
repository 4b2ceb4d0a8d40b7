"""A run driven forward: started by the API (or a batch's feeder), moved on by the worker
that got each step's answer.

    start(run)              -> the first call's envelope (None: the run ended at once)
    answered(env, reply)    -> the next call's envelope (None: the run ended, or this
                               answer was recorded before)
    resume(run)             -> the call that follows the last recorded visit (a batch
                               line's run whose worker died: sent again, never recorded twice)
    stop(env, cancelled)    -> the run ends: its batch was cancelled, or its window ended

The caller publishes the envelope: the API with one ``LPUSH``, a worker's task with
``send_task`` on the step's provider queue (``apply_async``), so each model step is a chat
task of its own with the limits, breakers and failover of any other.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from relay_core.dispatch.envelope import Envelope, Reply
from relay_core.errors import RelayError
from relay_core.workflow.engine import Call, Failed, Finished, Progress, advance, call_visit
from relay_core.workflow.models import ClassifyStep, ModelStep
from relay_core.workflow.route import StepRouter
from relay_core.workflow.run import RunRecord, RunStatus, StepVisit
from relay_core.workflow.store import RunStore

log = logging.getLogger("relay.workflow")


class LineSink(Protocol):
    """Where the run of a batch line is recorded once it ends (its one output record)."""

    async def ended(self, run: RunRecord, visits: Sequence[StepVisit]) -> None: ...


class WorkflowRunner:
    def __init__(
        self,
        store: RunStore,
        router: StepRouter,
        lines: LineSink | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.router = router
        self.lines = lines
        self.clock = clock

    async def start(self, run: RunRecord) -> Envelope | None:
        """Run ``run`` (stored already) up to its first call."""
        progress = advance(run.workflow, run.input, [], self.clock)
        return await self._then(run, [], progress)

    async def answered(self, env: Envelope, reply: Reply) -> Envelope | None:
        """Record the answer to a step's call and move the run on."""
        ref = env.workflow
        assert ref is not None
        run = await self.store.run(ref.run)
        if run is None or run.status is not RunStatus.running:
            return None  # expired, or ended (a late duplicate)
        step = run.workflow.step(ref.step)
        assert isinstance(step, ModelStep | ClassifyStep)
        visits = await self.store.visits(run.id)
        if any(v.index >= ref.index for v in visits):
            return None  # recorded before: this is a redelivered task's second answer
        visit = call_visit(step, ref.index, reply, ref.started_at, self.clock())
        progress = advance(run.workflow, run.input, [*visits, visit], self.clock)
        return await self._then(run, [*visits, visit], progress, fresh=1)

    async def resume(self, run: RunRecord) -> Envelope | None:
        """Move ``run`` on from its last recorded visit, as the worker that recorded it would
        have: the call that follows it, or the run's end. A worker that died between
        recording a step and sending the next call leaves no call anywhere; one that died
        during a call leaves its call unanswered; either way this sends it. Should that call
        be in flight after all, the two answers race for its visit (``HSETNX``): one is
        recorded and moves the run on, the other is dropped. A run that ended has its line's
        record written again (kept once per ``custom_id``: a death in between loses it)."""
        visits = await self.store.visits(run.id)
        if run.status is not RunStatus.running:
            if run.line is not None and self.lines is not None:
                await self.lines.ended(run, visits)
            return None
        progress = advance(run.workflow, run.input, visits, self.clock)
        return await self._then(run, visits, progress)

    async def stop(self, env: Envelope, *, cancelled: bool, record: bool = True) -> None:
        """End the run whose step ``env`` calls, before the call: its batch is being
        ``cancelled`` (the run ends ``cancelled`` and, with ``record``, its line is recorded
        as a cancelled plain line is), or its window ended (the run fails; the expiry writes
        its line)."""
        ref = env.workflow
        assert ref is not None
        run = await self.store.run(ref.run)
        if run is None or run.status is not RunStatus.running:
            return
        why = "the batch was cancelled" if cancelled else "the batch's completion window ended"
        ended = run.model_copy(
            update={
                "status": RunStatus.cancelled if cancelled else RunStatus.failed,
                "ended_at": self.clock(),
                "error": f"{why} before step {ref.step!r} ran",
            }
        )
        await self.store.record(run, [], updated=ended)
        if cancelled and record and ended.line is not None and self.lines is not None:
            await self.lines.ended(ended, await self.store.visits(run.id))
        log.debug("run %s stopped at step %s: %s", run.id, ref.step, why)

    async def _then(
        self, run: RunRecord, known: list[StepVisit], progress: Progress, fresh: int = 0
    ) -> Envelope | None:
        """Record the visits made (the last ``fresh`` of ``known`` and ``progress``'s) and
        what follows: the next call's envelope, or the run's end."""
        new = known[len(known) - fresh :] + progress.visits
        then = progress.then
        if isinstance(then, Call):
            try:
                env = await self.router.envelope(run, then, self.clock())
            except RelayError as exc:  # the catalogue changed: nobody serves its model now
                then = Failed(f"step {then.step.name!r}: {exc.message}")
            else:
                return env if await self.store.record(run, new) else None
        ended = run.model_copy(
            update={
                "status": RunStatus.completed if isinstance(then, Finished) else RunStatus.failed,
                "ended_at": self.clock(),
                "output": then.output if isinstance(then, Finished) else None,
                "error": then.error if isinstance(then, Failed) else None,
            }
        )
        if not await self.store.record(run, new, updated=ended):
            return None
        if ended.line is not None and self.lines is not None:
            await self.lines.ended(ended, [*known, *progress.visits])
        log.debug("run %s %s", run.id, ended.status.value)
        return None
