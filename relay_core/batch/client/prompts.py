"""Build a batch input file from plain prompts, and count a file's lines per model.

``relay batch submit`` accepts, besides a JSONL batch file:

- a text file: one prompt per non-empty line (``custom_id`` ``line-N``, N its line number);
- a CSV file with a header: the prompt is the ``prompt`` column (else the first column) and
  the ``custom_id`` the ``custom_id`` or ``id`` column when there is one (else ``row-N``).

Each prompt becomes a ``/v1/chat/completions`` line asking ``model`` (the meta-model unless
told otherwise). Files are read and written a line at a time.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from relay_core.batch.models import Endpoint
from relay_core.routing.targets import Selection

CSV_ID_COLUMNS = ("custom_id", "id")


def kind_of(path: Path) -> str:
    """``jsonl``, ``csv`` or ``text``, from the file's extension."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    return "csv" if suffix == ".csv" else "text"


def _line(custom_id: str, prompt: str, model: str) -> bytes:
    body = {"model": model, "messages": [{"role": "user", "content": prompt}]}
    data: dict[str, Any] = {
        "custom_id": custom_id,
        "method": "POST",
        "url": Endpoint.chat.value,
        "body": body,
    }
    return orjson.dumps(data) + b"\n"


def text_prompts(path: Path) -> Iterator[tuple[str, str]]:
    with path.open(encoding="utf-8") as f:
        for n, raw in enumerate(f, start=1):
            if raw.strip():
                yield f"line-{n}", raw.rstrip("\r\n")


def csv_prompts(path: Path) -> Iterator[tuple[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        if not columns:
            return
        prompt_col = "prompt" if "prompt" in columns else columns[0]
        id_col = next((c for c in CSV_ID_COLUMNS if c in columns), None)
        for n, row in enumerate(reader, start=1):
            prompt = (row.get(prompt_col) or "").strip()
            if prompt:
                yield (row.get(id_col) or f"row-{n}") if id_col else f"row-{n}", prompt


def build_jsonl(source: Path, dest: Path, model: str, kind: str | None = None) -> int:
    """Write the batch file for the prompts in ``source`` (text or CSV: ``kind``, else told by
    its extension); the lines written."""
    prompts = csv_prompts(source) if (kind or kind_of(source)) == "csv" else text_prompts(source)
    count = 0
    with dest.open("wb") as out:
        for custom_id, prompt in prompts:
            out.write(_line(custom_id, prompt, model))
            count += 1
    return count


_NARROWING = ("model_type", "model_scale", "model_name")


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def route_counts(path: Path, default_model: str | None) -> Counter[Selection]:
    """How many lines of a JSONL batch file name each model selection (lines that are not
    valid requests are skipped: validation reports them)."""
    counts: Counter[Selection] = Counter()
    with path.open("rb") as f:
        for raw in f:
            if not raw.strip():
                continue
            try:
                body = orjson.loads(raw).get("body") or {}
            except (orjson.JSONDecodeError, AttributeError):
                continue
            if not isinstance(body, dict):
                continue
            model = body.get("model") or default_model
            if isinstance(model, str) and model:
                kind, scale, name = (_text(body.get(f)) for f in _NARROWING)
                counts[Selection(model, kind, scale, name)] += 1
    return counts
