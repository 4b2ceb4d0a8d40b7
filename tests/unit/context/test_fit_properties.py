"""Property tests: every context mode fits the budget and keeps what must stay."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay_core.context import FitOptions, count_messages, fit_messages
from relay_core.context.conversation import Conversation
from relay_core.schemas.chat import Message
from relay_core.settings import ContextMode

WORDS = st.sampled_from(
    re.findall(
        r"\S+",
        "the model answered quickly because tokens matter a lot for free tiers with small "
        "windows def return x = 1 ; { } ( ) ünïcödé 東京 42 1234567",
    )
)
TEXT = st.lists(WORDS, min_size=1, max_size=60).map(" ".join)
TURN = st.tuples(st.sampled_from(["user", "assistant"]), TEXT)
MODES = st.sampled_from(list(ContextMode))


@st.composite
def conversations(draw: st.DrawFn) -> list[Message]:
    system = draw(st.lists(TEXT, max_size=2))
    turns = draw(st.lists(TURN, max_size=40))
    last = draw(TEXT)
    messages = [Message(role="system", content=t) for t in system]
    messages += [Message(role=r, content=t) for r, t in turns]
    messages.append(Message(role="user", content=last))
    messages += [Message(role="assistant", content=t) for t in draw(st.lists(TEXT, max_size=1))]
    return messages


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(conversations(), st.integers(min_value=0, max_value=3000), MODES, st.integers(1, 30))
def test_each_mode_fits_the_budget_and_keeps_system_and_last_user(
    messages: list[Message], budget: int, mode: ContextMode, keep: int
) -> None:
    options = FitOptions(mode=mode, static_messages=keep, summary_tokens=200)
    fitted = fit_messages(messages, budget, options)
    conv = Conversation.split(messages)
    if fitted is None:
        # Refused only when even the pinned part is over, or mode "off" with too much history.
        assert conv.pinned_cost() > budget or (
            mode is ContextMode.off and count_messages(messages) > budget
        )
        return
    assert count_messages(fitted) <= budget
    assert fitted[: len(conv.system)] == conv.system
    assert fitted[-len(conv.tail) :] == conv.tail
    if count_messages(messages) <= budget:
        assert fitted == messages  # nothing is touched when it fits


@settings(max_examples=200)
@given(conversations(), st.integers(min_value=0, max_value=2000), MODES)
def test_kept_history_is_a_suffix_that_starts_at_a_user_turn(
    messages: list[Message], budget: int, mode: ContextMode
) -> None:
    fitted = fit_messages(messages, budget, FitOptions(mode=mode, static_messages=7))
    if fitted is None or fitted == messages:
        return
    conv = Conversation.split(messages)
    middle = fitted[len(conv.system) : len(fitted) - len(conv.tail)]
    verbatim = [m for m in middle if not _is_summary(m)]
    if verbatim:
        assert verbatim[0].role == "user"
        assert conv.history[-len(verbatim) :] == verbatim


def _is_summary(m: Message) -> bool:
    return m.role == "system" and m.text().startswith("Summary of the earlier part")
