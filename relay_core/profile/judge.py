"""Whether an answer is usable for the request it answers: a 200 is not yet a success.

An answer fails when it is empty (no text and no tool call), cut short (``finish_reason``
``length``) when the caller set no output cap, not JSON where JSON was asked, or a tool call
whose arguments do not parse as a JSON object. Read on the answer as the client would get
it (after :mod:`relay_core.normalize` took JSON out of its fence).
"""

from __future__ import annotations

from enum import StrEnum

import orjson

from relay_core.errors import UpstreamUnusableAnswer
from relay_core.normalize.jsonmode import is_json
from relay_core.profile.models import Profile
from relay_core.schemas.chat import ChatCompletion, Choice


class Flaw(StrEnum):
    empty = "an empty answer"
    truncated = "an answer cut short (finish_reason length, no cap asked)"
    invalid_json = "an answer that is not JSON, where JSON was asked"
    bad_tool_arguments = "a tool call whose arguments are not a JSON object"


def judge(profile: Profile, body: ChatCompletion) -> Flaw | None:
    """The first flaw of ``body``'s first choice that makes it unusable, or None."""
    if not body.choices:
        return Flaw.empty
    return judge_choice(profile, body.choices[0])


def unusable_answer(
    profile: Profile, body: ChatCompletion, provider: str, model: str
) -> UpstreamUnusableAnswer | None:
    """The error an unusable answer counts as (None for a usable one)."""
    flaw = judge(profile, body)
    if flaw is None:
        return None
    return UpstreamUnusableAnswer(
        f"{provider} answered {model} with {flaw.value}.", provider=provider, model=model
    )


def judge_choice(profile: Profile, choice: Choice) -> Flaw | None:
    message = choice.message
    calls = message.tool_calls or []
    text = message.content or ""
    if not calls and not text.strip():
        return Flaw.empty
    if choice.finish_reason == "length" and not profile.capped:
        return Flaw.truncated
    if any(not _json_object(c.function.arguments) for c in calls):
        return Flaw.bad_tool_arguments
    if profile.needs.json_output and not calls and not is_json(text):
        return Flaw.invalid_json
    return None


def _json_object(text: str) -> bool:
    try:
        return isinstance(orjson.loads(text), dict)
    except orjson.JSONDecodeError:
        return False
