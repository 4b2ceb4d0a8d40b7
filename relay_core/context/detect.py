"""Is this conversation about code? (``adaptive`` mode picks its strategy by it.)

Coding if tools are in play, or a good share of the recent text is code: fenced blocks, or
lines that look like code (indentation, brackets and operators at line ends, keywords).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from relay_core.schemas.chat import Message

_FENCE = re.compile(r"^\s{0,3}(```|~~~)", re.MULTILINE)
_CODE_LINE = re.compile(
    r"^(?:\s{4,}\S|\t\S)|[;{}]\s*$|^\s*(?:def|class|import|from|return|function|const|let|var|"
    r"public|private|fn|func|package|#include|SELECT|INSERT)\b|=>|::|\(\)",
)
RECENT_MESSAGES = 8
CODE_SHARE = 0.3


def looks_like_code(messages: Sequence[Message]) -> bool:
    recent = list(messages)[-RECENT_MESSAGES:]
    if any(m.role == "tool" or m.tool_calls for m in recent):
        return True
    lines = [line for m in recent for line in m.text().splitlines() if line.strip()]
    if not lines:
        return False
    if any(_FENCE.search(m.text()) for m in recent):
        return True
    code = sum(1 for line in lines if _CODE_LINE.search(line))
    return code / len(lines) >= CODE_SHARE
