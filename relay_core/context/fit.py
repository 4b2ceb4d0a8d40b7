"""Fit a conversation into one model's context window (see docs/context.md).

The prompt budget of a model is ``context_window * SAFETY`` minus the output the request
reserves (its ``max_tokens``/``max_completion_tokens``, else the model's output cap or a
quarter of the window, whichever is smaller). The modes:

* ``off``: nothing is dropped; a conversation over the budget is refused;
* ``static``: the last ``context_static_messages`` messages (then ``dynamic`` if still over);
* ``dynamic``: as many of the most recent messages as fit;
* ``reservoir``: recent messages verbatim plus an extractive summary of the older ones;
* ``adaptive``: ``dynamic`` for coding conversations (code must stay verbatim), else
  ``reservoir``.

Whatever the mode, the system prompt and the last user message (with what follows it) are
never dropped; when they alone do not fit,
:class:`~relay_core.errors.ContextLengthExceeded` says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from relay_core.context.conversation import Conversation, longest_suffix, user_cuts
from relay_core.context.count import PER_REQUEST, count_each, count_message
from relay_core.context.detect import looks_like_code
from relay_core.context.summary import summarise
from relay_core.errors import ContextLengthExceeded
from relay_core.schemas.chat import ChatCompletionRequest, Message
from relay_core.settings import ContextMode, Settings

if TYPE_CHECKING:  # annotations only: the catalogue imports the profile, which imports this
    from relay_core.catalogue.models import ModelConfig

SAFETY = 0.92  # the token count is an estimate: leave 8 % of the window unused
DEFAULT_RESERVE = 1024
SUMMARY_SHARE = 3  # a summary takes at most a third of the room left for history


@dataclass(frozen=True, slots=True)
class FitOptions:
    mode: ContextMode = ContextMode.dynamic
    static_messages: int = 20
    summary_tokens: int = 512
    # Relay's estimate times this is the upstream's count: above 1 after an upstream said
    # the prompt was longer than estimated (docs/context.md, "when the upstream disagrees").
    scale: float = 1.0

    @classmethod
    def from_settings(
        cls, settings: Settings, override: str | None = None, scale: float = 1.0
    ) -> FitOptions:
        mode = ContextMode(override) if override else settings.context_mode
        return cls(mode, settings.context_static_messages, settings.context_summary_tokens, scale)


def output_reserve(request: ChatCompletionRequest, model: ModelConfig) -> int:
    """Output tokens to leave room for: what the request asks, else a sensible share."""
    asked = request.output_limit()
    if asked is not None:
        return asked * (request.n or 1)
    cap = model.max_output_tokens or DEFAULT_RESERVE
    return min(cap, DEFAULT_RESERVE, model.context_window // 4)


def prompt_budget(request: ChatCompletionRequest, model: ModelConfig, scale: float = 1.0) -> int:
    """Prompt tokens (as Relay estimates them) ``model`` can take for ``request`` (may be
    <= 0: nothing fits); ``scale`` is :attr:`FitOptions.scale`."""
    room = int(model.context_window * SAFETY) - output_reserve(request, model)
    return room if scale == 1.0 else int(room / scale)


def _overflow(model: ModelConfig, budget: int, pinned: int) -> ContextLengthExceeded:
    return ContextLengthExceeded(
        f"This request needs about {pinned} prompt tokens for its system prompt and last user "
        f"message alone, but model '{model.id}' leaves room for {max(budget, 0)} (context "
        f"window {model.context_window}, minus the output reserved). Shorten them or lower "
        "max_tokens.",
        param="messages",
    )


def fit_messages(
    messages: Sequence[Message],
    budget: int,
    options: FitOptions,
    costs: Sequence[int] | None = None,
) -> list[Message] | None:
    """The messages to send within ``budget`` tokens, or None when even the system prompt and
    the last user turn do not fit. ``costs`` are the messages' estimates, when counted."""
    conv = Conversation.split(messages, costs)
    room = budget - conv.pinned_cost()
    if room < 0:
        return None
    if sum(conv.history_costs) <= room:
        return list(messages)
    mode = options.mode
    if mode is ContextMode.adaptive:
        code = looks_like_code(messages)
        mode = ContextMode.dynamic if code else ContextMode.reservoir
    if mode is ContextMode.off:
        return None
    if mode is ContextMode.static:
        return conv.join(_static(conv, room, options.static_messages))
    if mode is ContextMode.reservoir:
        return _reservoir(conv, room, options.summary_tokens)
    return conv.join(conv.history[longest_suffix(conv.history, conv.history_costs, room) :])


def _static(conv: Conversation, room: int, keep: int) -> list[Message]:
    history = conv.history
    start = max(0, len(history) - keep)
    cut = next(i for i in user_cuts(history) if i >= start)
    kept, kept_costs = history[cut:], conv.history_costs[cut:]
    return kept[longest_suffix(kept, kept_costs, room) :]


def _reservoir(conv: Conversation, room: int, summary_tokens: int) -> list[Message]:
    summary_room = min(summary_tokens, room // SUMMARY_SHARE)
    cut = longest_suffix(conv.history, conv.history_costs, room - summary_room)
    kept = conv.history[cut:]
    summary = summarise(conv.history[:cut], room - sum(conv.history_costs[cut:]))
    return conv.join(kept, [summary] if summary is not None else [])


def fit_counted(
    request: ChatCompletionRequest,
    model: ModelConfig,
    options: FitOptions,
    costs: Sequence[int] | None = None,
) -> tuple[ChatCompletionRequest, int]:
    """``request`` with its messages fitted to ``model``, and its prompt's estimate; or a 400
    naming the problem. ``costs`` (each message's estimate, counted once per request) spare
    counting again."""
    each = list(costs) if costs is not None else count_each(request.messages)
    total = PER_REQUEST + sum(each)
    budget = prompt_budget(request, model, options.scale)
    if total <= budget:
        return request, total
    fitted = fit_messages(request.messages, budget, options, each)
    if fitted is None:
        if options.mode is ContextMode.off:
            raise ContextLengthExceeded(
                f"The conversation needs about {total} prompt tokens "
                f"but model '{model.id}' leaves room for {max(budget, 0)}, and context "
                "management is off (context_mode='off').",
                param="messages",
            )
        pinned = Conversation.split(request.messages, each).pinned_cost()
        raise _overflow(model, budget, pinned)
    by_id = {id(m): c for m, c in zip(request.messages, each, strict=True)}
    prompt = PER_REQUEST + sum(by_id.get(id(m)) or count_message(m) for m in fitted)
    return request.model_copy(update={"messages": fitted}), prompt


def fit_request(
    request: ChatCompletionRequest, model: ModelConfig, options: FitOptions
) -> ChatCompletionRequest:
    """``request`` with its messages fitted to ``model``, or a 400 naming the problem."""
    return fit_counted(request, model, options)[0]


def required_tokens(
    request: ChatCompletionRequest, options: FitOptions, costs: Sequence[int] | None = None
) -> int:
    """The fewest prompt tokens ``request`` can be sent with in this mode (model-independent):
    the whole conversation when nothing may be dropped, else its pinned part."""
    each = list(costs) if costs is not None else count_each(request.messages)
    if options.mode is ContextMode.off:
        return PER_REQUEST + sum(each)
    return Conversation.split(request.messages, each).pinned_cost()


def can_fit(request: ChatCompletionRequest, model: ModelConfig, options: FitOptions) -> bool:
    """Whether :func:`fit_request` would succeed for ``model`` (the API filters candidates)."""
    return required_tokens(request, options) <= prompt_budget(request, model, options.scale)
