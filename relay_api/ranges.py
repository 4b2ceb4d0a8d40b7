"""A download's ``Range`` header (RFC 9110 §14), read as starlette's ``FileResponse`` reads it:
``bytes=0-99``, ``bytes=100-`` (to the end), ``bytes=-100`` (the last 100), or several of them
separated by commas (merged where they overlap or touch).

    >>> byte_ranges("bytes=0-9, 5-19, -5", 100)
    [(0, 20), (95, 100)]

Each range is ``(start, end)``, ``end`` exclusive. A header that is not a byte range is a 400
(:class:`~relay_core.errors.InvalidRequest`); one with a range that starts past the file's end
a 416 (:class:`~relay_core.errors.RangeNotSatisfiable`); one with more than :data:`MAX_RANGES`
ranges is answered whole (``[]``), as starlette does.
"""

from __future__ import annotations

from relay_core.errors import InvalidRequest, RangeNotSatisfiable

MAX_RANGES = 100


def _malformed(why: str) -> InvalidRequest:
    return InvalidRequest(f"Malformed Range header: {why}.", param="range")


def _one(part: str, size: int) -> tuple[int, int] | None:
    """One ``first-last`` (or ``first-``, ``-suffix``) of the header; None for one that says
    nothing (empty, no dash, not numbers), which is skipped."""
    first, dash, last = (p.strip() for p in part.partition("-"))
    if (
        not dash
        or not (first or last)
        or not (first or "0").isdigit()
        or not (last or "0").isdigit()
    ):
        return None
    if not first:
        return max(size - int(last), 0), size
    end = int(last) + 1 if last and int(last) < size else size
    return int(first), end


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def byte_ranges(header: str, size: int) -> list[tuple[int, int]]:
    """The ranges of ``header`` for a file of ``size`` bytes (``[]``: send it whole)."""
    unit, equals, spec = header.partition("=")
    if not equals:
        raise _malformed("expected bytes=first-last")
    if unit.strip().lower() != "bytes":
        raise _malformed("only byte ranges are served")
    if spec.count(",") + 1 > MAX_RANGES:
        return []
    ranges = [r for r in (_one(part, size) for part in spec.split(",")) if r is not None]
    if not ranges:
        raise _malformed("no range given")
    if any(not 0 <= start < size for start, _ in ranges):
        raise RangeNotSatisfiable(
            f"The range {spec.strip()} is not inside the file ({size} bytes).",
            param="range",
            size=size,
        )
    if any(start >= end for start, end in ranges):
        raise _malformed("a range's last byte comes before its first")
    return _merged(ranges) if len(ranges) > 1 else ranges
