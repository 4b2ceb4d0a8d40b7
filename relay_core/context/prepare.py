"""What a worker does to a request before sending it to one candidate model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from relay_core.catalogue.models import ModelConfig
from relay_core.context.fit import FitOptions, fit_request, prompt_budget, required_tokens
from relay_core.errors import ContextLengthExceeded
from relay_core.normalize.style import merge_style
from relay_core.schemas.chat import ChatCompletionRequest
from relay_core.settings import Settings

T = TypeVar("T")


def prepare_request(
    request: ChatCompletionRequest, model: ModelConfig, settings: Settings
) -> ChatCompletionRequest:
    """The style directive merged into the system prompt, then the conversation fitted to
    ``model``'s window (raises :class:`~relay_core.errors.ContextLengthExceeded` when it
    cannot be)."""
    request = merge_style(request, settings.style_directive)
    return fit_request(request, model, FitOptions.from_settings(settings, request.context_mode))


def keep_fitting(
    request: ChatCompletionRequest,
    candidates: Sequence[T],
    model_of: Callable[[T], ModelConfig],
    settings: Settings,
) -> list[T]:
    """The candidates whose context window can take ``request`` (once fitted), in order.

    When none can, the 400 that :func:`prepare_request` gives for the widest of them.
    """
    request = merge_style(request, settings.style_directive)
    need = required_tokens(request, FitOptions.from_settings(settings, request.context_mode))
    kept = [c for c in candidates if prompt_budget(request, model_of(c)) >= need]
    if kept or not candidates:
        return kept
    widest = max(candidates, key=lambda c: prompt_budget(request, model_of(c)))
    prepare_request(request, model_of(widest), settings)  # raises the 400 that says why
    raise ContextLengthExceeded(
        "The conversation is too long for every candidate.", param="messages"
    )
