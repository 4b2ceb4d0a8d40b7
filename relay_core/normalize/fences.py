"""Markdown code fences, read line by line the way CommonMark does.

A fence is a line of three or more backticks (or tildes) indented at most three spaces; it
closes at a line of the same character, at least as long, with nothing after it. So a ```` ````
```` block may hold ```` ``` ```` lines (nested fences), which are its content.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


def fence_of(line: str) -> tuple[str, str] | None:
    """(fence, the rest of the line) when ``line`` is a fence line."""
    m = _FENCE.match(line.rstrip("\r\n"))
    return None if m is None else (m.group(1), m.group(2))


class FenceTracker:
    """Feed it lines; it knows whether the text so far ends inside a code block."""

    def __init__(self) -> None:
        self.open: str | None = None

    @property
    def inside(self) -> bool:
        return self.open is not None

    def line(self, line: str) -> None:
        found = fence_of(line)
        if found is None:
            return
        fence, rest = found
        if self.open is None:
            if not (fence[0] == "`" and "`" in rest):  # ```a`b``` is inline code, not a fence
                self.open = fence
        elif fence[0] == self.open[0] and len(fence) >= len(self.open) and not rest.strip():
            self.open = None

    def closer(self, text_so_far: str) -> str:
        """What closes the open block after ``text_so_far`` ("" when none is open)."""
        if self.open is None:
            return ""
        return self.open if text_so_far.endswith("\n") or not text_so_far else f"\n{self.open}"


def balance_fences(text: str) -> str:
    """``text`` with its last code block closed if the answer stopped inside it."""
    tracker = FenceTracker()
    for line in text.splitlines():
        tracker.line(line)
    return text + tracker.closer(text)


def fenced_blocks(text: str) -> Iterator[str]:
    """The content of each top-level fenced block, in order."""
    tracker = FenceTracker()
    lines: list[str] = []
    for line in text.splitlines(keepends=True):
        was_inside = tracker.inside
        tracker.line(line)
        if was_inside and tracker.inside:
            lines.append(line)
        elif was_inside:
            yield "".join(lines)
            lines = []
