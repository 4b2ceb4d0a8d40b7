"""A batch as a Redis hash, and back to OpenAI's batch object.

The hash holds OpenAI's fields (status, timestamps, file ids, ``metadata`` and ``errors`` as
JSON) next to Relay's bookkeeping: ``owner``, the counters (``total``, ``completed``,
``failed``, ``input_tokens``, ``output_tokens``), the feeder's cursor ``next`` and pacing
bucket, ``default_model`` and, once known, ``end_reason``. While its output files cannot be
written, ``finalize_error`` says why and ``finalize_failures`` counts the attempts; the batch
object shows the cause in ``errors`` (OpenAI's list) until a finalize succeeds. Lines sent again
are counted by why (``resent_worker_died``, ``resent_overdue``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from relay_core.batch.models import (
    BatchError,
    BatchErrors,
    BatchObject,
    BatchStatus,
    BatchUsage,
    EndReason,
    RequestCounts,
)

Fields = dict[str, str]
RESENT = "resent_"  # the hash's re-send counters: resent_worker_died, resent_overdue
ANSWER_S = "upstream_s:"  # a provider's moving average answer time: upstream_s:{provider}


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """A batch's hash decoded once, at the store: what the worker, the feeder, the API and
    the CLI read, typed (``fields`` keeps the raw hash for :func:`to_object`)."""

    id: str
    status: BatchStatus | None
    owner: str
    endpoint: str
    input_file_id: str
    expires_at_exact: float
    total: int
    completed: int
    failed: int
    dispatched: int  # the feeder's cursor (``next``)
    upstream_s: float  # the moving average of answer times that sizes the feeder's window
    answer_s: dict[str, float]  # the same per provider (the providers that answered lines)
    closing: bool  # a cancel is closing the batch
    default_model: str | None
    end_reason: EndReason | None
    output_file_id: str | None
    error_file_id: str | None
    finalize_error: str | None
    # Lines sent again, by why: ``worker_died`` (their worker's holds stopped moving),
    # ``overdue`` (no sign of life for the line timeout).
    resent: dict[str, int]
    fields: Fields = field(repr=False)

    @property
    def done(self) -> int:
        return self.completed + self.failed

    @classmethod
    def decode(cls, fields: Fields) -> BatchRecord:
        reason = fields.get("end_reason")
        return cls(
            id=fields["id"],
            status=status_of(fields),
            owner=fields.get("owner", ""),
            endpoint=fields.get("endpoint", ""),
            input_file_id=fields.get("input_file_id", ""),
            expires_at_exact=float(fields.get("expires_at_exact") or 0.0),
            total=_int(fields, "total"),
            completed=_int(fields, "completed"),
            failed=_int(fields, "failed"),
            dispatched=_int(fields, "next"),
            upstream_s=float(fields.get("upstream_s") or 0.0),
            answer_s={
                name.removeprefix(ANSWER_S): float(value)
                for name, value in fields.items()
                if name.startswith(ANSWER_S) and value
            },
            closing=fields.get("closing") == "1",
            default_model=fields.get("default_model") or None,
            end_reason=EndReason(reason) if reason else None,
            output_file_id=fields.get("output_file_id") or None,
            error_file_id=fields.get("error_file_id") or None,
            finalize_error=fields.get("finalize_error") or None,
            resent={
                name.removeprefix(RESENT): _int(fields, name)
                for name in fields
                if name.startswith(RESENT)
            },
            fields=fields,
        )


_TIMESTAMPS = (
    "in_progress_at",
    "expires_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)


def decode(raw: Mapping[bytes | str, bytes | str]) -> Fields:
    return {_s(k): _s(v) for k, v in raw.items()}


def _s(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


def _int(fields: Fields, name: str) -> int:
    value = fields.get(name)
    return int(float(value)) if value else 0


def _opt_int(fields: Fields, name: str) -> int | None:
    value = fields.get(name)
    return int(float(value)) if value else None


OUTPUT_WRITE_FAILED = "output_write_failed"


def _errors(fields: Fields) -> BatchErrors | None:
    """The batch's ``errors``: its input's (set at validation), else why its output files
    could not be written yet (while finalizing)."""
    errors = fields.get("errors")
    if errors:
        return BatchErrors.model_validate_json(errors)
    failing = fields.get("finalize_error")
    if failing:
        return BatchErrors(data=[BatchError(code=OUTPUT_WRITE_FAILED, message=failing)])
    return None


def finalize_failures(fields: Fields) -> int:
    """How many attempts to write the batch's output files failed since the last success."""
    return _int(fields, "finalize_failures") if fields.get("finalize_error") else 0


def to_object(fields: Fields) -> BatchObject:
    metadata = fields.get("metadata")
    tin, tout = _int(fields, "input_tokens"), _int(fields, "output_tokens")
    return BatchObject(
        id=fields["id"],
        endpoint=fields["endpoint"],
        errors=_errors(fields),
        input_file_id=fields["input_file_id"],
        completion_window=fields["completion_window"],
        status=BatchStatus(fields["status"]),
        output_file_id=fields.get("output_file_id") or None,
        error_file_id=fields.get("error_file_id") or None,
        created_at=_int(fields, "created_at"),
        request_counts=RequestCounts(
            total=_int(fields, "total"),
            completed=_int(fields, "completed"),
            failed=_int(fields, "failed"),
        ),
        usage=BatchUsage(input_tokens=tin, output_tokens=tout, total_tokens=tin + tout),
        metadata=json.loads(metadata) if metadata else None,
        model=fields.get("model") or None,
        **{name: _opt_int(fields, name) for name in _TIMESTAMPS},
    )


def status_of(fields: Fields) -> BatchStatus | None:
    value = fields.get("status")
    return BatchStatus(value) if value else None
