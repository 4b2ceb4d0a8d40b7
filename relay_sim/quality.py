"""How good a simulated provider's answers are, per task family (issue 16, item 9).

A provider's ``quality`` maps a task family (or ``"*"``) to a :class:`SimQuality`: the share
of its answers that are empty, in prose where JSON was asked (with the provider's
``invalid_json_rate``, the larger applies), or wrong, and the extra time they take. The
request's family is read with Relay's own classifier
(:func:`relay_core.profile.family.classify`) over the last user message, so a test can say
"this provider is bad at coding" and Relay, profiling the same text, sees coding requests
fail. Like every field of the provider, it changes mid-run through ``POST
/_sim/providers/{name}``. The simulator's RNG is drawn only for shares that are set, so a
seeded run without quality profiles draws as before.

A **wrong** answer is well formed and its text ends with :data:`WRONG_MARKER`: no judge of
Relay's can tell it from a right one (as with a real model), but a benchmark can count them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from relay_core.profile.family import classify
from relay_core.profile.models import TaskFamily
from relay_sim.answer import Answer, Call
from relay_sim.config import SimProvider, SimQuality

WRONG_MARKER = "[sim:wrong]"
GOOD = SimQuality()


def family_of(call: Call) -> TaskFamily:
    """The request's task family, as Relay's profile reads its last user message."""
    return classify(call.text, wants_json=call.json_mode)


def quality_for(config: SimProvider, call: Call) -> SimQuality:
    if not config.quality:
        return GOOD
    found = config.quality.get(family_of(call))
    return found if found is not None else config.quality.get("*", GOOD)


@dataclass(frozen=True, slots=True)
class Judged:
    """The answer as this provider's quality made it, and which fault it got (if any)."""

    answer: Answer
    fault: str | None = None  # the counter to add to: empty_answers or wrong_answers


def _draw(rng: random.Random, share: float) -> bool:
    return share > 0 and rng.random() < share


def degrade(answer: Answer, call: Call, quality: SimQuality, rng: random.Random) -> Judged:
    """``answer`` made empty or wrong by ``quality`` (prose for JSON is decided before the
    answer is made: ``invalid_json`` joins the provider's ``invalid_json_rate``)."""
    if answer.tool is not None or call.prose:
        return Judged(answer)
    if _draw(rng, quality.empty):
        return Judged(replace(answer, content="", completion_tokens=0), "empty_answers")
    if _draw(rng, quality.wrong):
        return Judged(replace(answer, content=f"{answer.content} {WRONG_MARKER}"), "wrong_answers")
    return Judged(answer)
