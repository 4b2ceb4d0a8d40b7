"""Workflow runs in Redis: one hash a run, ``{prefix}:wfrun:{id}``.

The hash holds the run's record (``run``: its workflow, owner, input, status, output) and each
step visit under ``v:{index}``. A call's visit is written with ``HSETNX`` together with the
inline visits that follow it, in one script: a chat task delivered twice (a redelivery after
a worker died) finds its visit taken and goes no further, so every step is recorded once and
the run moves on once.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from redis.asyncio import Redis

from relay_core.errors import NotFound
from relay_core.workflow.run import RunRecord, StepVisit

RUN_PREFIX = "wfrun_"

# KEYS: the run's hash; ARGV: ttl, the record, then field/value pairs of the visits (the
# first one is the gate). Returns 0 when the first visit was recorded before.
_RECORD = """
if #ARGV >= 4 and redis.call('HSETNX', KEYS[1], ARGV[3], ARGV[4]) == 0 then
  return 0
end
for i = 5, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'run', ARGV[2])
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""


def new_run_id() -> str:
    return RUN_PREFIX + secrets.token_hex(12)


class RunStore:
    def __init__(self, redis: Redis, prefix: str, ttl_s: float) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl_s = max(1, int(ttl_s))
        self._record = redis.register_script(_RECORD)

    def key(self, run_id: str) -> str:
        return f"{self.prefix}:wfrun:{run_id}"

    async def create(self, run: RunRecord) -> bool:
        """Store a new run; False when a run of that id exists (a batch line sent again)."""
        key = self.key(run.id)
        created = await self.redis.hsetnx(key, "run", run.model_dump_json())
        await self.redis.expire(key, self.ttl_s)
        return bool(created)

    async def run(self, run_id: str) -> RunRecord | None:
        raw = await self.redis.hget(self.key(run_id), "run")
        return None if raw is None else RunRecord.model_validate_json(raw)

    async def owned(self, workflow: str, run_id: str, owner: str) -> RunRecord:
        run = await self.run(run_id) if run_id.startswith(RUN_PREFIX) else None
        if run is None or run.owner != owner or run.workflow.name != workflow:
            raise NotFound(f"No such run of workflow {workflow!r}: {run_id}", param="run_id")
        return run

    async def visits(self, run_id: str) -> list[StepVisit]:
        raw = await self.redis.hgetall(self.key(run_id))
        found = [
            StepVisit.model_validate_json(v)
            for k, v in raw.items()
            if (k.decode() if isinstance(k, bytes) else k).startswith("v:")
        ]
        return sorted(found, key=lambda v: v.index)

    async def has_visit(self, run_id: str, index: int) -> bool:
        """Whether the run's visit ``index`` is recorded (a step's call delivered again)."""
        return bool(await self.redis.hexists(self.key(run_id), f"v:{index}"))

    async def record(
        self, run: RunRecord, visits: Sequence[StepVisit], *, updated: RunRecord | None = None
    ) -> bool:
        """Record ``visits`` (the first of them once only) and the run's ``updated`` record;
        False (nothing written) when the first visit was recorded before."""
        args: list[str] = [str(self.ttl_s), "" if updated is None else updated.model_dump_json()]
        for v in visits:
            args += [f"v:{v.index}", v.model_dump_json()]
        return bool(await self._record(keys=[self.key(run.id)], args=args))
