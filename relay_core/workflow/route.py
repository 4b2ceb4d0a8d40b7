"""A model step's chat request made an envelope: its candidates, as a batch line's are.

The step's ``model`` is resolved like any chat request's (an alias, ``provider/model``, the
meta-model), the catalogue's routing policies apply as they do to a batch line (no headers),
and the candidates are spread over the runs (rotated by the step's id), those that can serve
now (breaker closed, a token free) first. From there the executor treats it as any chat task:
the same limiter, breakers, repairs and failover.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from relay_core.breaker import Breaker
from relay_core.catalogue.models import ProviderConfig
from relay_core.dispatch.envelope import Candidate, Envelope, Kind, RouteFlags, StepRef
from relay_core.limits import Limiter
from relay_core.policy.apply import admit, capped, preferred_first
from relay_core.policy.models import Policy
from relay_core.policy.ruling import NOTHING, Facts, decide
from relay_core.profile import profile_request
from relay_core.routing.live import live_states
from relay_core.routing.targets import Selection, Target, resolve_targets
from relay_core.settings import Settings
from relay_core.workflow.engine import Call
from relay_core.workflow.models import ClassifyStep, ModelStep, Workflow
from relay_core.workflow.run import RunRecord


def step_id(run: RunRecord, index: int) -> str:
    """The chat task id of visit ``index`` of a run. A batch line's run's steps are named
    as the line's tasks are (``{batch_id}:{line}:w{index}``), so whatever finds a batch
    line's task in a worker's holds or on a queue (relay_core/batch/run/orphans.py) finds
    its run's steps too."""
    if run.line is not None:
        return f"{run.line.batch_id}:{run.line.index}:w{index}"
    return f"{run.id}:{index}"


@dataclass
class StepRouter:
    settings: Settings
    providers: Sequence[ProviderConfig]  # the enabled ones
    limiter: Limiter
    breaker: Breaker
    policies: Sequence[Policy] = ()

    def targets(self, model: str) -> list[Target]:
        """Who may serve ``model`` (a 404 or 400 naming it when nobody may)."""
        s = self.settings
        return resolve_targets(
            self.providers, Selection(model), mode=s.mode, meta_model=s.meta_model
        )

    def check(self, wf: Workflow) -> None:
        """Every call step's model is served by someone (else the 404 of a chat request)."""
        for step in wf.steps:
            if isinstance(step, ModelStep | ClassifyStep):
                self.targets(step.model)

    async def envelope(self, run: RunRecord, call: Call, now: float) -> Envelope:
        request = call.request
        targets = self.targets(request.model)
        ruling = NOTHING
        if self.policies:
            profile = profile_request(request)
            ruling = decide(self.policies, Facts(request.model, profile, run.owner, {}))
            if ruling.fired:
                targets = admit(ruling, targets, ruling.mode or self.settings.mode)
                request, _ = capped(ruling, request, profile)
        task_id = step_id(run, call.index)
        turn = zlib.crc32(task_id.encode()) % len(targets)
        ordered = targets[turn:] + targets[:turn]
        live = await live_states(ordered, self.limiter, self.breaker, now)
        ordered.sort(key=lambda t: (live[t.key].breaker_open, live[t.key].wait_s > 0))
        ordered = preferred_first(ruling, ordered)
        batch = run.kind == Kind.batch.value
        return Envelope(
            id=task_id,
            request=request,
            candidates=[Candidate(provider=t.provider.name, model=t.model.id) for t in ordered],
            kind=Kind.batch if batch else Kind.interactive,
            deadline=run.deadline if batch else now + self.settings.request_timeout_s,
            enqueued_at=now,
            owner=run.owner,
            # A batch line's step is one of the line's tasks (its books: relay_core/workflow/
            # steps.py): it stands aside for interactive requests and renews the line's sign
            # of life.
            batch_id=run.line.batch_id if run.line is not None else None,
            custom_id=run.line.custom_id if run.line is not None else None,
            flags=RouteFlags(hedge=bool(ruling.hedge), cache=bool(ruling.cache)),
            workflow=StepRef(run=run.id, step=call.step.name, index=call.index, started_at=now),
        )
