"""OpenAI's Files and Batch wire types, and the statuses a batch moves through.

The objects are rendered exactly as OpenAI's API renders them (``openai.types.FileObject``,
``openai.types.Batch``), so the official SDK and existing scripts read them unchanged.

    validating ──► in_progress ──► finalizing ──► completed
        │              │   └──────► (window ends) ──► expired
        ▼              ▼
      failed       cancelling ──► cancelled
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field


class BatchStatus(StrEnum):
    validating = "validating"
    failed = "failed"
    in_progress = "in_progress"
    finalizing = "finalizing"
    completed = "completed"
    expired = "expired"
    cancelling = "cancelling"
    cancelled = "cancelled"


TERMINAL = frozenset(
    {BatchStatus.failed, BatchStatus.completed, BatchStatus.expired, BatchStatus.cancelled}
)


class EndReason(StrEnum):
    """Why a running batch is being finalized: it sets the final status and the error code
    of the lines that never finished."""

    completed = "completed"
    expired = "expired"
    cancelled = "cancelled"


class Endpoint(StrEnum):
    chat = "/v1/chat/completions"
    embeddings = "/v1/embeddings"


WORKFLOWS = "/v1/workflows/"  # a batch of workflow runs: endpoint /v1/workflows/<name>


def workflow_name(endpoint: str) -> str | None:
    """The workflow a batch endpoint ``/v1/workflows/<name>`` runs (None: not a workflow's)."""
    name = endpoint.removeprefix(WORKFLOWS)
    return name if name != endpoint and name and "/" not in name else None


class FilePurpose(StrEnum):
    batch = "batch"
    batch_output = "batch_output"


class FileObject(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: FilePurpose
    status: Literal["uploaded", "processed", "error"] = "processed"
    status_details: str | None = None
    expires_at: int | None = None


class FileRecord(FileObject):
    """What Relay keeps about a file: the OpenAI object plus its owner and line count."""

    owner: str
    lines: int = 0

    def public(self) -> FileObject:
        return FileObject.model_validate(self.model_dump(exclude={"owner", "lines"}))


class BatchError(BaseModel):
    code: str
    message: str
    param: str | None = None
    line: int | None = None


class BatchErrors(BaseModel):
    object: Literal["list"] = "list"
    data: list[BatchError] = Field(default_factory=list)


class RequestCounts(BaseModel):
    total: int = 0
    completed: int = 0
    failed: int = 0


class InputTokensDetails(BaseModel):
    cached_tokens: int = 0


class OutputTokensDetails(BaseModel):
    reasoning_tokens: int = 0


class BatchUsage(BaseModel):
    input_tokens: int = 0
    input_tokens_details: InputTokensDetails = Field(default_factory=InputTokensDetails)
    output_tokens: int = 0
    output_tokens_details: OutputTokensDetails = Field(default_factory=OutputTokensDetails)
    total_tokens: int = 0


class BatchObject(BaseModel):
    id: str
    object: Literal["batch"] = "batch"
    endpoint: str
    errors: BatchErrors | None = None
    input_file_id: str
    completion_window: str
    status: BatchStatus
    output_file_id: str | None = None
    error_file_id: str | None = None
    created_at: int
    in_progress_at: int | None = None
    expires_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    request_counts: RequestCounts = Field(default_factory=RequestCounts)
    usage: BatchUsage = Field(default_factory=BatchUsage)
    metadata: dict[str, str] | None = None
    model: str | None = None
    # Relay's extension: the time left at the measured rate while it runs (relay_core.batch.eta)
    eta_seconds: float | None = None


class ListPage(BaseModel):
    """OpenAI's cursor page: ``{"object": "list", "data", "first_id", "last_id", "has_more"}``."""

    object: Literal["list"] = "list"
    data: list[Any]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False

    @classmethod
    def of(cls, items: list[Any], has_more: bool) -> ListPage:
        ids = [getattr(i, "id", None) for i in items]
        return cls(
            data=items,
            first_id=ids[0] if ids else None,
            last_id=ids[-1] if ids else None,
            has_more=has_more,
        )


class ProviderProgress(BaseModel):
    completed: int = 0
    failed: int = 0


class BatchProgress(BaseModel):
    """Relay's extension (``GET /v1/batches/{id}/progress``): what the CLI's bar shows."""

    id: str
    status: BatchStatus
    request_counts: RequestCounts
    dispatched: int = 0
    in_flight: int = 0
    providers: dict[str, ProviderProgress] = Field(default_factory=dict)
    created_at: int
    in_progress_at: int | None = None
    expires_at: int | None = None
    # Relay's extension: why the output files could not be written yet, and how many
    # attempts failed (None and 0 while nothing failed).
    finalize_error: str | None = None
    finalize_failures: int = 0
    # Relay's extension: lines sent again, by why: "worker_died" (the worker holding them
    # stopped showing signs of life), "overdue" (no sign of life for the line timeout).
    resent: dict[str, int] = Field(default_factory=dict)
    # Lines sent again because they were far overdue (hedged), and the answers that came
    # second and were thrown away (docs/batch.md, "Stragglers").
    hedged: int = 0
    discarded: int = 0
    # Lines finished per second so far, and the time left at that rate (relay_core.batch.eta).
    rate_per_s: float | None = None
    eta_seconds: float | None = None
