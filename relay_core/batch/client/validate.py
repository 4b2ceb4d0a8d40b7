"""Validate a whole batch input file in one pass, and index its lines.

The file is read line by line (never whole, and never a line over ``max_line_bytes`` whole:
such a line is refused by its length alone, unparsed); each line is checked
(:mod:`relay_core.batch.lines`), its ``custom_id`` must be unique, and its model must be one
Relay routes (checked once per distinct selection). The result is the line index the feeder
dispatches from — byte offsets into the file, so a line's body is read only when it is sent —
or the errors, OpenAI-style (``{code, message, line, param}``), at most :data:`MAX_ERRORS` of
them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from relay_core.batch.lines import CheckedLine, LineRef, check_line
from relay_core.batch.models import BatchError, Endpoint
from relay_core.errors import ModelNotFound, RelayError
from relay_core.routing.targets import Selection

MAX_ERRORS = 100
DEFAULT_MAX_LINE_BYTES = 1024 * 1024  # RELAY_BATCH_MAX_LINE_BYTES
_SKIP = 64 * 1024  # an over-long line is skipped this many bytes at a time

# Raises ModelNotFound / InvalidRequest when no enabled provider serves the selection.
RouteCheck = Callable[[Selection], object]


@dataclass(slots=True)
class Scan:
    refs: list[LineRef] = field(default_factory=list)
    routes: list[Selection] = field(default_factory=list)
    errors: list[BatchError] = field(default_factory=list)


@dataclass(slots=True)
class _Routes:
    check: RouteCheck
    index: dict[Selection, int] = field(default_factory=dict)
    refused: dict[Selection, RelayError] = field(default_factory=dict)

    def of(self, route: Selection) -> int | RelayError:
        if route in self.index:
            return self.index[route]
        if route in self.refused:
            return self.refused[route]
        try:
            self.check(route)
        except RelayError as exc:
            self.refused[route] = exc
            return exc
        self.index[route] = len(self.index)
        return self.index[route]


def _route_error(exc: RelayError, n: int, route: Selection) -> BatchError:
    code = "model_not_found" if isinstance(exc, ModelNotFound) else "invalid_request"
    param = "body." + (exc.param or "model")
    return BatchError(code=code, message=f"Line {n}: {exc.message}", line=n, param=param)


def too_long(n: int, limit: int) -> str:
    """What to say of line ``n`` when it is over ``limit`` bytes (newline not counted)."""
    return (
        f"Line {n} is longer than the {limit:,} bytes a batch line may hold "
        "(RELAY_BATCH_MAX_LINE_BYTES)."
    )


def _lines(f: BinaryIO, limit: int) -> Iterator[tuple[bytes | None, int]]:
    """Each line of ``f`` (None for one longer than ``limit`` bytes without its newline,
    which is skipped, never held whole) and its size in the file, newline included."""
    while raw := f.readline(limit + 1):
        if raw.endswith(b"\n") or len(raw) <= limit:
            yield raw, len(raw)
            continue
        size = len(raw)
        while rest := f.readline(_SKIP):
            size += len(rest)
            if rest.endswith(b"\n"):
                break
        yield None, size


def scan_file(
    source: BinaryIO,
    endpoint: Endpoint | str,
    *,
    max_lines: int,
    check_route: RouteCheck,
    default_model: str | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Scan:
    """Check every line read from ``source`` (a file, or a stored object read through
    :func:`relay_core.storage.reader.thread_reader`); blank lines are skipped (they are not
    requests)."""
    scan = Scan()
    routes = _Routes(check_route)
    seen: set[str] = set()
    offset, n = 0, 0
    with source as f:
        for raw, size in _lines(f, max_line_bytes):
            start, offset = offset, offset + size
            if raw is not None and not raw.strip():
                continue
            n += 1
            if n > max_lines:
                scan.errors.append(
                    BatchError(
                        code="too_many_requests",
                        message=f"The file has more than {max_lines:,} requests.",
                        line=n,
                    )
                )
                break
            problem: tuple[CheckedLine, int] | BatchError
            if raw is None:
                problem = BatchError(
                    code="invalid_request", message=too_long(n, max_line_bytes), line=n
                )
            else:
                problem = _check(
                    raw, n, endpoint=endpoint, default_model=default_model, seen=seen, routes=routes
                )
            if isinstance(problem, BatchError):
                scan.errors.append(problem)
                if len(scan.errors) >= MAX_ERRORS:
                    break
                continue
            checked, route_index = problem
            seen.add(checked.custom_id)
            scan.refs.append(LineRef(start, size, route_index, checked.custom_id))
    if n == 0:
        scan.errors.append(BatchError(code="empty_file", message="The file has no requests."))
    scan.routes = list(routes.index)
    return scan


def _check(
    raw: bytes,
    n: int,
    *,
    endpoint: Endpoint | str,
    default_model: str | None,
    seen: set[str],
    routes: _Routes,
) -> tuple[CheckedLine, int] | BatchError:
    checked = check_line(raw, n, endpoint, default_model)
    if isinstance(checked, BatchError):
        return checked
    if checked.custom_id in seen:
        return BatchError(
            code="duplicate_custom_id",
            message=f"Line {n}: custom_id {checked.custom_id!r} appears on an earlier line.",
            line=n,
            param="custom_id",
        )
    found = routes.of(checked.route)
    if isinstance(found, RelayError):
        return _route_error(found, n, checked.route)
    return checked, found
