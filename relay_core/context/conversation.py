"""A conversation cut into what must stay and what may go.

* ``system``: the leading system/developer messages (the system prompt) — always kept;
* ``tail``: from the last user message to the end (the question, plus any assistant tool calls
  and tool results answering it) — always kept, verbatim;
* ``history``: everything in between — what context fitting may drop or summarise.

Dropping always keeps a *suffix* of the history that starts at a user message, so a kept tool
result never loses the assistant message that called it, and every API family accepts the
order (Anthropic and Gemini want a user turn after the system prompt).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from relay_core.context.count import PER_REQUEST, count_each
from relay_core.schemas.chat import Message

SYSTEM_ROLES = frozenset({"system", "developer"})


@dataclass(frozen=True, slots=True)
class Conversation:
    """The three parts, each with its messages' token estimates (counted once, carried)."""

    system: list[Message]
    history: list[Message]
    tail: list[Message]
    system_costs: list[int]
    history_costs: list[int]
    tail_costs: list[int]

    @classmethod
    def split(cls, messages: Sequence[Message], costs: Sequence[int] | None = None) -> Conversation:
        """Cut ``messages``; ``costs`` are their estimates (counted here when not given)."""
        each = list(costs) if costs is not None else count_each(messages)
        n_system = 0
        while n_system < len(messages) and messages[n_system].role in SYSTEM_ROLES:
            n_system += 1
        rest = list(messages[n_system:])
        last_user = max((i for i, m in enumerate(rest) if m.role == "user"), default=None)
        if last_user is None:
            # No user turn at all: the last message is the one that must go through.
            last_user = max(len(rest) - 1, 0)
        cut = n_system + last_user
        return cls(
            list(messages[:n_system]),
            rest[:last_user],
            rest[last_user:],
            each[:n_system],
            each[n_system:cut],
            each[cut:],
        )

    def pinned_cost(self) -> int:
        """Tokens of what is never dropped (system prompt and tail, with template overhead)."""
        return PER_REQUEST + sum(self.system_costs) + sum(self.tail_costs)

    def join(self, kept: Sequence[Message], extra_system: Sequence[Message] = ()) -> list[Message]:
        return [*self.system, *extra_system, *kept, *self.tail]


def user_cuts(history: Sequence[Message]) -> list[int]:
    """Indices where a kept suffix of ``history`` may start: user turns, and the end."""
    return [i for i, m in enumerate(history) if m.role == "user"] + [len(history)]


def longest_suffix(history: Sequence[Message], costs: Sequence[int], budget: int) -> int:
    """The smallest cut ``i`` (a :func:`user_cuts` index) with ``history[i:]`` (whose
    estimates are ``costs``) within ``budget`` tokens; ``len(history)`` (keep nothing) when
    no suffix fits."""
    best = len(history)
    suffix_cost = 0
    cuts = set(user_cuts(history))
    for i in range(len(history) - 1, -1, -1):
        suffix_cost += costs[i]
        if suffix_cost > budget:
            break
        if i in cuts:
            best = i
    return best
