"""``completion_window``: OpenAI's ``"24h"``, and longer ones (``"48h"``, ``"7d"``, ...)."""

from __future__ import annotations

import re

from relay_core.errors import InvalidRequest

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
MAX_WINDOW_S = 30 * 86400


def window_seconds(window: str, min_s: float) -> float:
    """Seconds in ``window``; a clear 400 when it is malformed, shorter than ``min_s`` or
    longer than 30 days."""
    match = _PATTERN.match(window)
    if match is None:
        raise InvalidRequest(
            f"Invalid completion_window '{window}': use a number and a unit, e.g. '24h' or '7d'.",
            param="completion_window",
        )
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds < min_s:
        raise InvalidRequest(
            f"completion_window '{window}' is shorter than the {_human(min_s)} allowed.",
            param="completion_window",
        )
    if seconds > MAX_WINDOW_S:
        raise InvalidRequest(
            f"completion_window '{window}' is longer than the 30 days allowed.",
            param="completion_window",
        )
    return seconds


def _human(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
