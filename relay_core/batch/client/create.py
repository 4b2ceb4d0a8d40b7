"""``POST /v1/batches``: the request, and the checks made before a batch exists.

What can be checked at once is: the endpoint (``/v1/chat/completions`` or
``/v1/embeddings``), the completion window (``24h`` and
longer), the metadata (OpenAI's 16 keys of at most 64 characters, values of at most 512), and
the input file (it exists, belongs to the caller, was uploaded for ``batch``). The file's lines
are validated afterwards by a worker (status ``validating``), as OpenAI does.
"""

from __future__ import annotations

from collections.abc import Collection

from pydantic import BaseModel

from relay_core.batch.models import Endpoint, FilePurpose, FileRecord, workflow_name
from relay_core.errors import InvalidRequest

MAX_METADATA_KEYS = 16
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512


class CreateBatch(BaseModel):
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, str] | None = None
    # Relay's extension: the model of lines whose body names none.
    model: str | None = None


class RetryBatch(BaseModel):
    completion_window: str | None = None
    metadata: dict[str, str] | None = None


def check_endpoint(endpoint: str, workflows: Collection[str] = ()) -> str:
    """The endpoint, when a batch may run it: chat, embeddings, or ``/v1/workflows/<name>``
    for one of ``workflows`` (docs/workflows.md)."""
    name = workflow_name(endpoint)
    if name is not None:
        if name not in workflows:
            raise InvalidRequest(f"No workflow {name!r} in the catalogue.", param="endpoint")
        return endpoint
    try:
        return Endpoint(endpoint).value
    except ValueError:
        raise InvalidRequest(
            f"Unsupported endpoint {endpoint!r}: use '/v1/chat/completions', '/v1/embeddings' "
            "or '/v1/workflows/<name>'.",
            param="endpoint",
        ) from None


def check_metadata(metadata: dict[str, str] | None) -> None:
    if metadata is None:
        return
    if len(metadata) > MAX_METADATA_KEYS:
        raise InvalidRequest(
            f"metadata may hold at most {MAX_METADATA_KEYS} keys.", param="metadata"
        )
    for key, value in metadata.items():
        if len(key) > MAX_METADATA_KEY or len(value) > MAX_METADATA_VALUE:
            raise InvalidRequest(
                f"metadata keys are at most {MAX_METADATA_KEY} characters and values at most "
                f"{MAX_METADATA_VALUE} (key {key[:40]!r}).",
                param=f"metadata.{key[:40]}",
            )


def check_input(record: FileRecord) -> None:
    if record.purpose is not FilePurpose.batch:
        raise InvalidRequest(
            f"File {record.id} has purpose '{record.purpose}'; upload it with purpose 'batch'.",
            param="input_file_id",
        )
