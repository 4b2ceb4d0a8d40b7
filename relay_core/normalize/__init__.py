"""Consistent output: the style directive, and the normalizer for answers and streams."""

from __future__ import annotations

from relay_core.normalize.answer import OFF, Normalize, normalize_completion, normalize_text
from relay_core.normalize.stream import ChunkNormalizer
from relay_core.normalize.style import merge_style

__all__ = [
    "OFF",
    "ChunkNormalizer",
    "Normalize",
    "merge_style",
    "normalize_completion",
    "normalize_text",
]
