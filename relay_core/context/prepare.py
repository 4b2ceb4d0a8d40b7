"""What the API and a worker do to a request before it goes to a candidate model.

A request's messages are counted **once** (the API counts them, off its event loop when they
are long, and the envelope carries the counts to every visit and candidate), and a request
that cannot fit any candidate is refused from lengths alone, before anything is counted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from relay_core.context.conversation import Conversation
from relay_core.context.count import count_each, count_message, lower_bound, message_chars
from relay_core.context.fit import (
    SAFETY,
    FitOptions,
    fit_counted,
    prompt_budget,
    required_tokens,
)
from relay_core.errors import ContextLengthExceeded, InvalidRequest
from relay_core.normalize.style import merge_style
from relay_core.schemas.chat import ChatCompletionRequest
from relay_core.settings import ContextMode, Settings

if TYPE_CHECKING:  # annotations only: the catalogue imports the profile, which imports this
    from relay_core.catalogue.models import ModelConfig

T = TypeVar("T")

# Counting this many characters or more runs in a thread, off the event loop (~1 ms of CPU
# per 100,000 characters; below that a thread hand-off costs more than it saves).
OFFLOAD_CHARS = 200_000


def styled(
    request: ChatCompletionRequest, directive: str, costs: Sequence[int] | None
) -> tuple[ChatCompletionRequest, list[int] | None]:
    """The style directive merged into the system prompt, and the counts adjusted to match
    (only the first message can change, or one be inserted before it)."""
    merged = merge_style(request, directive)
    if merged is request or costs is None:
        return merged, None if costs is None else list(costs)
    each = list(costs)
    first = count_message(merged.messages[0])
    if len(merged.messages) > len(request.messages):
        return merged, [first, *each]
    return merged, [first, *each[1:]]


def prepare_request(
    request: ChatCompletionRequest,
    model: ModelConfig,
    settings: Settings,
    costs: Sequence[int] | None = None,
    scale: float = 1.0,
) -> tuple[ChatCompletionRequest, int]:
    """The style directive merged into the system prompt, then the conversation fitted to
    ``model``'s window; with the prompt's estimate. Raises
    :class:`~relay_core.errors.ContextLengthExceeded` when it cannot be fitted."""
    request, each = styled(request, settings.style_directive, costs)
    options = FitOptions.from_settings(settings, request.context_mode, scale)
    return fit_counted(request, model, options, each)


async def count_request(request: ChatCompletionRequest) -> list[int]:
    """Each message's estimate, counted in a thread when the text is long."""
    chars = sum(message_chars(m) for m in request.messages)
    if chars < OFFLOAD_CHARS:
        return count_each(request.messages)
    return await asyncio.to_thread(count_each, request.messages)


def _output_param(request: ChatCompletionRequest) -> str:
    return "max_completion_tokens" if request.max_completion_tokens else "max_tokens"


def _output_too_large(
    request: ChatCompletionRequest, model: ModelConfig, need: int
) -> InvalidRequest | None:
    """A 400 naming the output cap, when it (not the prompt) is what leaves no room."""
    asked = request.output_limit()
    room = int(model.context_window * SAFETY) - need
    n = request.n or 1
    if asked is None or room <= 0 or asked * n <= room:
        return None
    param = _output_param(request)
    times = f" x n={n}" if n > 1 else ""
    return InvalidRequest(
        f"{param} is {asked}{times}, but model '{model.id}' (context window "
        f"{model.context_window}) leaves room for at most {room // n} output tokens after "
        f"this prompt (about {need} tokens). Lower {param} to {room // n} or less.",
        param=param,
    )


def _refuse(
    request: ChatCompletionRequest, widest: ModelConfig, need: int, *, at_least: bool
) -> InvalidRequest:
    too_large = _output_too_large(request, widest, need)
    if too_large is not None:
        return too_large
    about = "at least" if at_least else "about"
    budget = max(prompt_budget(request, widest), 0)
    return ContextLengthExceeded(
        f"This request needs {about} {need} prompt tokens for what cannot be dropped (the "
        f"system prompt and the last user message), but the widest candidate, model "
        f"'{widest.id}', leaves room for {budget} (context window {widest.context_window}, "
        "minus the output reserved). Shorten them or lower max_tokens.",
        param="messages",
    )


async def fit_candidates(
    request: ChatCompletionRequest,
    candidates: Sequence[T],
    model_of: Callable[[T], ModelConfig],
    settings: Settings,
) -> tuple[list[T], list[int]]:
    """The candidates whose context window can take ``request`` (once fitted), in order, and
    its messages' estimates (counted once, for the envelope).

    A request that cannot fit even the widest candidate is refused from its length before
    anything is counted; when none can take it, the 400 says why (the prompt, or an output
    cap larger than the window)."""
    if not candidates:
        return [], []
    merged = merge_style(request, settings.style_directive)
    options = FitOptions.from_settings(settings, request.context_mode)
    models = [model_of(c) for c in candidates]
    widest = max(models, key=lambda m: prompt_budget(merged, m))
    largest = max(models, key=lambda m: m.context_window)
    floor = _floor(merged, options)
    if floor > int(largest.context_window * SAFETY):  # over every window, whatever the output
        raise _refuse(merged, largest, floor, at_least=True)
    costs = await count_request(request)
    _, each = styled(request, settings.style_directive, costs)
    need = required_tokens(merged, options, each)
    kept = [c for c in candidates if prompt_budget(merged, model_of(c)) >= need]
    if not kept:
        raise _refuse(merged, widest, need, at_least=False)
    return kept, costs


def _floor(request: ChatCompletionRequest, options: FitOptions) -> int:
    """A floor under :func:`required_tokens`, from lengths alone (nothing is counted)."""
    if options.mode is ContextMode.off:
        return lower_bound(request.messages)
    conv = Conversation.split(request.messages, [0] * len(request.messages))
    return lower_bound([*conv.system, *conv.tail])
