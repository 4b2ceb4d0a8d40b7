"""Fitting long conversations into each candidate model's context window (docs/context.md)."""

from __future__ import annotations

from relay_core.context.count import count_messages, count_text
from relay_core.context.fit import (
    FitOptions,
    can_fit,
    fit_messages,
    fit_request,
    output_reserve,
    prompt_budget,
)

__all__ = [
    "FitOptions",
    "can_fit",
    "count_messages",
    "count_text",
    "fit_messages",
    "fit_request",
    "output_reserve",
    "prompt_budget",
]
