"""The file ``relay batch submit`` / ``estimate`` is given: checked to be UTF-8, then sent as is
(JSONL) or turned into JSONL first (prompts as text or CSV).

A file in another encoding (a Latin-1 or UTF-16 export from a spreadsheet) is refused before
anything is uploaded, with the file's name, the byte offset and line of the first byte that is
not UTF-8, and how to convert it — never a ``UnicodeDecodeError`` traceback.
"""

from __future__ import annotations

import shlex
from pathlib import Path


class InputError(Exception):
    """The input file cannot be used; the message says why and what to do."""


def check_utf8(path: Path) -> None:
    """Raise :class:`InputError` at the first byte of ``path`` that is not UTF-8."""
    offset = 0
    with path.open("rb") as f:
        for n, raw in enumerate(f, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                at = offset + exc.start
                bad = raw[exc.start : exc.start + 1].hex()
                raise InputError(not_utf8(path, at, n, bad)) from None
            offset += len(raw)


def not_utf8(path: Path, offset: int, line: int, byte: str) -> str:
    from relay_core.batch.client.prompts import kind_of

    what = {
        "jsonl": "a batch file must be UTF-8 JSONL",
        "csv": "a CSV of prompts must be UTF-8",
    }.get(kind_of(path), "a file of prompts must be UTF-8 text")
    fixed = path.with_name(f"{path.stem}.utf8{path.suffix}")
    convert = f"iconv -f latin1 -t utf-8 {shlex.quote(str(path))} > {shlex.quote(str(fixed))}"
    return (
        f"{path} is not UTF-8: byte 0x{byte} at offset {offset:,} (line {line}) is not valid "
        f"UTF-8; {what}. Convert it first, e.g. `{convert}` (if it was Latin-1)."
    )


def input_file(path: Path, model: str | None, tmp: Path) -> Path:
    """The JSONL file to upload: ``path`` itself, or one built in ``tmp`` from its prompts."""
    from relay_core.batch.client.prompts import build_jsonl, kind_of

    if not path.is_file():
        raise InputError(f"{path}: no such file")
    check_utf8(path)
    if kind_of(path) == "jsonl":
        return path
    built = tmp / f"{path.stem}.jsonl"
    count = build_jsonl(path, built, model or "meta-model")
    print(f"built {count:,} requests from {path.name}")
    return built
