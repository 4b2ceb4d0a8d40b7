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

from relay_core.context.count import PER_REQUEST, count_message
from relay_core.schemas.chat import Message

SYSTEM_ROLES = frozenset({"system", "developer"})


@dataclass(frozen=True, slots=True)
class Conversation:
    system: list[Message]
    history: list[Message]
    tail: list[Message]

    @classmethod
    def split(cls, messages: Sequence[Message]) -> Conversation:
        n_system = 0
        while n_system < len(messages) and messages[n_system].role in SYSTEM_ROLES:
            n_system += 1
        rest = list(messages[n_system:])
        last_user = max((i for i, m in enumerate(rest) if m.role == "user"), default=None)
        if last_user is None:
            # No user turn at all: the last message is the one that must go through.
            last_user = max(len(rest) - 1, 0)
        return cls(list(messages[:n_system]), rest[:last_user], rest[last_user:])

    def pinned_cost(self) -> int:
        """Tokens of what is never dropped (system prompt and tail, with template overhead)."""
        return PER_REQUEST + costs(self.system) + costs(self.tail)

    def join(self, kept: Sequence[Message], extra_system: Sequence[Message] = ()) -> list[Message]:
        return [*self.system, *extra_system, *kept, *self.tail]


def costs(messages: Sequence[Message]) -> int:
    return sum(count_message(m) for m in messages)


def user_cuts(history: Sequence[Message]) -> list[int]:
    """Indices where a kept suffix of ``history`` may start: user turns, and the end."""
    return [i for i, m in enumerate(history) if m.role == "user"] + [len(history)]


def longest_suffix(history: Sequence[Message], budget: int) -> int:
    """The smallest cut ``i`` (a :func:`user_cuts` index) with ``history[i:]`` within
    ``budget`` tokens; ``len(history)`` (keep nothing) when no suffix fits."""
    best = len(history)
    suffix_cost = 0
    cuts = set(user_cuts(history))
    for i in range(len(history) - 1, -1, -1):
        suffix_cost += count_message(history[i])
        if suffix_cost > budget:
            break
        if i in cuts:
            best = i
    return best
