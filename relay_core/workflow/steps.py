"""The books of a workflow batch line's steps, kept around each step's call in a worker.

A line of a ``/v1/workflows/<name>`` batch is a run, and each of its call steps is a chat
task named as the line's tasks are (``{batch_id}:{line}:w{index}``: relay_core/workflow/
route.py). Before a step's call:

* a step whose visit is recorded (its task delivered again after its worker died, the run
  resumed since) is dropped, and so is a step of a line already recorded (its run ended);
* a step of a cancelling batch ends its run ``cancelled`` (its line recorded as a cancelled
  plain line is); a step of a batch no longer running, or whose window ended, ends its run
  ``failed`` (the expiry writes the line as ``batch_expired``).

The call is visited as a plain line's is (:meth:`~relay_core.batch.run.books.LineBooks.
visit_step`): it waits its turn at the gate, standing aside while an interactive request waits
for the same provider, and the line's sign of life is renewed as it starts, while it runs and
when it goes back to a queue, so the sweeper never re-sends a run that is only long. After it,
the run records the answer and moves on (:meth:`~relay_core.workflow.runner.WorkflowRunner.
answered`), and the line counts in the share of the next call's provider.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from relay_core.batch.models import BatchStatus
from relay_core.batch.run.books import LineBooks, Visit
from relay_core.batch.run.feeder import line_index
from relay_core.dispatch.envelope import Envelope
from relay_core.dispatch.outcome import Forward, Outcome
from relay_core.workflow.runner import WorkflowRunner

_IN_PROGRESS = BatchStatus.in_progress.value.encode()
_CANCELLING = BatchStatus.cancelling.value.encode()


@dataclass
class LineSteps:
    books: LineBooks  # the batch lines' books of this worker (their gate, their beats)
    runner: WorkflowRunner

    async def visit(self, env: Envelope, visit: Visit) -> Outcome | None:
        """Visit a step's call; None when it is dropped (see the module's docstring)."""
        ref = env.workflow
        assert ref is not None and env.batch_id is not None
        store, batch_id, index = self.books.store, env.batch_id, line_index(env.id)
        keys = store.keys(batch_id)
        async with store.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(keys.meta, ["status", "closing"])
            pipe.hexists(keys.results, env.custom_id or "")
            pipe.hexists(self.runner.store.key(ref.run), f"v:{ref.index}")
            # Its visit starts: a sign of life (if the line is still in flight), same trip.
            due = time.time() + self.books.line_timeout_s
            pipe.zadd(keys.inflight, {str(index): due}, xx=True)
            (status, closing), seen, recorded, _ = await pipe.execute()
        if seen or recorded:
            return None
        if status == _CANCELLING or closing:
            # Once the cancel closes, the finalize writes the lines left: not recorded here.
            await self.runner.stop(env, cancelled=True, record=not closing)
            return None
        if status != _IN_PROGRESS or time.time() >= env.deadline:
            await self.runner.stop(env, cancelled=False)
            return None
        return await self.books.visit_step(env, visit)

    async def answered(self, env: Envelope, outcome: Outcome) -> Outcome:
        """After the visit (out of reach of a worker's stop, which hands an unfinished
        visit back to its queue): a final answer is the run's, which moves on; the outcome
        the task acts on (a ``Forward`` of the next call, or of this one back to a queue)."""
        if isinstance(outcome, Forward):
            return outcome
        then = await self.runner.answered(env, outcome.reply)
        if then is None:
            return outcome
        if then.current.provider != env.current.provider:
            batch_id = env.batch_id or ""
            await self.books.store.assign(batch_id, [(line_index(env.id), then.current.provider)])
        return Forward(then)
