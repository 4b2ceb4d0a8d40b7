"""Provider preambles: the "Sure thing!" or "As an AI language model," some models open with.

Only the very start of an answer is looked at, and only whole interjections followed by
punctuation and a space are removed ("Certainly not" stays). An answer that opens with a code
fence is never touched, and an answer that is nothing but a preamble is left as it is.
"""

from __future__ import annotations

import re

_INTERJECTIONS = (
    "sure thing",
    "sure",
    "certainly",
    "of course",
    "absolutely",
    "great question",
    "good question",
    "alright",
    "all right",
    "okay",
    "ok",
    "happy to help",
    "i'd be happy to help",
    "i would be happy to help",
    "i'd be glad to help",
    "i would be glad to help",
)
_AS_AN_AI = (
    r"as an ai(?: language model| model| assistant)?"
    r"(?: (?:developed|created|made|trained) by [\w .-]{1,40}?)?"
)
_WORDS = "|".join(re.escape(w) for w in _INTERJECTIONS)
# Leading blank lines and up to three spaces (four would be an indented code block), then a
# whole interjection with its punctuation, or "As an AI ...,", then the space after it.
_PREAMBLE = re.compile(
    rf"^(?:[ \t]*\n)*[ ]{{0,3}}(?:(?:{_WORDS})[!.,:]+|{_AS_AN_AI},)(?:\s+|$)",
    re.IGNORECASE,
)
STARTS = (*_INTERJECTIONS, "as an ai")
# A stream holds at most this much text at its start while deciding.
HOLD_CHARS = 96
_DELIMITED = re.compile(r"[!.,:?\n]\s*[^\s!.,:?]")


def strip_once(text: str) -> str | None:
    """``text`` without one leading preamble, or None when it does not open with one."""
    m = _PREAMBLE.match(text)
    return None if m is None else text[m.end() :]


def strip_preamble(text: str) -> str:
    """``text`` without its leading preambles ("Sure! Certainly, here ..." loses both)."""
    rest, stripped = text, False
    while (shorter := strip_once(rest)) is not None and shorter.strip():
        rest, stripped = shorter, True
    return capitalise(rest) if stripped else text


def capitalise(text: str) -> str:
    return text[:1].upper() + text[1:] if text[:1].islower() else text


def decided(head: str) -> bool:
    """Whether the opening ``head`` of a stream is enough to tell if it is a preamble."""
    t = head.lstrip().lower()
    if not t:
        return False
    if len(t) >= HOLD_CHARS or not any(s.startswith(t) or t.startswith(s) for s in STARTS):
        return True
    return _DELIMITED.search(t) is not None
