"""A workflow run that answers a batch line, recorded as the line's one result.

The line's output record is the run as ``GET /v1/workflows/{name}/runs/{id}`` shows it (every
step visited, with its output, attempts and route) in OpenAI's batch line format; a run that
failed goes to the error file with the run beside the error; a run its batch's cancel
stopped is in the error file as a cancelled plain line is (``response: null``, the error
``batch_cancelled``), the steps it made beside it (``relay.run``). ``record.lua`` keeps one
result per ``custom_id``, so a line whose run was resumed still has one record.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import orjson

from relay_core.batch.run.outputs import DROPPED_MESSAGES, ERROR, OUTPUT
from relay_core.batch.store.store import BatchStore
from relay_core.workflow.run import RunObject, RunRecord, RunStatus, StepVisit

FAILED_STATUS = 500


def line_result(run: RunRecord, visits: Sequence[StepVisit]) -> tuple[bytes, bool]:
    """The stored result (prefixed ``o`` or ``e``) of a line's ended run, and whether it is
    an output line."""
    assert run.line is not None
    shown = RunObject.of(run, list(visits)).model_dump(mode="json")
    ok = run.status is RunStatus.completed
    line: dict[str, object] = {
        "id": "batch_req_" + secrets.token_hex(12),
        "custom_id": run.line.custom_id,
        "response": None,
        "error": None,
    }
    if run.status is RunStatus.cancelled:
        code = "batch_cancelled"
        line["error"] = {"code": code, "message": DROPPED_MESSAGES[code]}
        line["relay"] = {"run": shown}
        return ERROR + orjson.dumps(line), False
    body: dict[str, object] = shown
    if not ok:
        error = {"message": run.error, "type": "workflow_error", "code": "workflow_failed"}
        body = {"error": error, "run": shown}
    status = 200 if ok else FAILED_STATUS
    line["response"] = {"status_code": status, "request_id": run.id, "body": body}
    return (OUTPUT if ok else ERROR) + orjson.dumps(line), ok


class BatchLines:
    """Records each line's run in its batch (:class:`~relay_core.workflow.runner.LineSink`)."""

    def __init__(self, store: BatchStore) -> None:
        self.store = store

    async def ended(self, run: RunRecord, visits: Sequence[StepVisit]) -> None:
        assert run.line is not None
        line, ok = line_result(run, visits)
        calls = [v for v in visits if v.provider]
        await self.store.record(
            run.line.batch_id,
            custom_id=run.line.custom_id,
            index=run.line.index,
            line=line,
            ok=ok,
            provider=calls[-1].provider if calls else None,
            upstream_s=sum(v.ended_at - v.started_at for v in calls),
        )
