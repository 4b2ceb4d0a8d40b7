"""What an upstream's ``context_length_exceeded`` says about its own count, and the correction
Relay applies to its estimate for the one retry (docs/context.md).

The figures are read from the provider's message (the error was already *classified* by its
``code``; only the numbers come from the text): OpenAI and vLLM say "maximum context length is
W tokens. However, you requested N tokens (P in the messages, C in the completion)" or "your
messages resulted in P tokens"; llama.cpp's Python server "Requested tokens (P) exceed context
window of W".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PROMPT = (
    re.compile(r"(\d+) in the messages"),
    re.compile(r"messages resulted in (\d+) tokens"),
    re.compile(r"[Rr]equested tokens \((\d+)\)"),
    re.compile(r"prompt is too long: (\d+) tokens"),
    re.compile(r"you requested (\d+) tokens"),
)
_WINDOW = (
    re.compile(r"maximum context length is (\d+)"),
    re.compile(r"context window of (\d+)"),
    re.compile(r"tokens > (\d+) maximum"),
)
MARGIN = 1.05  # aim a little under the upstream's own count
MAX_SCALE = 16.0


@dataclass(frozen=True, slots=True)
class UpstreamCount:
    prompt_tokens: int
    window: int | None = None


def _first(patterns: tuple[re.Pattern[str], ...], text: str) -> int | None:
    for pattern in patterns:
        found = pattern.search(text)
        if found is not None:
            return int(found.group(1))
    return None


def upstream_count(text: str) -> UpstreamCount | None:
    """The prompt tokens (and window) the upstream's message names, or None."""
    prompt = _first(_PROMPT, text)
    if prompt is None or prompt <= 0:
        return None
    return UpstreamCount(prompt, _first(_WINDOW, text))


def corrected_scale(count: UpstreamCount, estimate: int, window: int) -> float:
    """How much larger the upstream counts than Relay's ``estimate`` of the prompt it was sent
    (and than the catalogue's ``window``, when the upstream's is smaller): the factor
    :class:`~relay_core.context.fit.FitOptions` ``scale`` divides budgets by."""
    scale = count.prompt_tokens / max(estimate, 1)
    if count.window is not None and 0 < count.window < window:
        scale *= window / count.window
    return min(max(scale, 1.0) * MARGIN, MAX_SCALE)
