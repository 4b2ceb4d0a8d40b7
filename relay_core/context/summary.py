"""An extractive summary of dropped messages, within a token budget.

No model is called: sentences are scored by term frequency over the dropped text (stop words
left out, each sentence's score its mean term weight, so long sentences do not win by length),
with a position bias — a message's first sentences, and more recent messages, weigh more — then
chosen greedily, best first, while they fit the budget, skipping near-duplicates of a sentence
already chosen (repetition is what term frequency rewards most, and says nothing new), and
written out in their original order.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from relay_core.context.count import count_message, count_text
from relay_core.schemas.chat import Message

HEADER = "Summary of the earlier part of this conversation (extracted sentences):"
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|\n|$)")
_WORD = re.compile(r"[^\W\d_]{2,}", re.UNICODE)
_STOP = frozenset(
    re.findall(
        r"\w+",
        """
        a about above after again all also am an and any are as at be because been before
        being but by can could did do does doing down during each few for from had has have
        having he her here hers him his how i if in into is it its just let me more most my no
        nor not now of off on once only or other our out over own same she should so some such
        than that the their them then there these they this those through to too under until up
        very was we were what when where which while who whom why will with would you your
        """,
    )
)
MIN_SENTENCE_CHARS = 12
NEAR_DUPLICATE = 0.7  # Jaccard overlap of words above which a sentence adds nothing new


@dataclass(frozen=True, slots=True)
class Sentence:
    order: int  # position in the dropped text, for writing the summary in order
    role: str
    text: str
    score: float
    cost: int


def _words(text: str) -> list[str]:
    return [w for w in (m.group().lower() for m in _WORD.finditer(text)) if w not in _STOP]


def _sentences(messages: Sequence[Message]) -> list[tuple[int, int, str, str]]:
    """(message index, sentence index in message, role, text) for every sentence."""
    out: list[tuple[int, int, str, str]] = []
    for mi, message in enumerate(messages):
        found = (s.group().strip() for s in _SENTENCE.finditer(message.text()))
        sentences = [s for s in found if len(s) >= MIN_SENTENCE_CHARS]
        out.extend((mi, si, message.role, s) for si, s in enumerate(sentences))
    return out


def score_sentences(messages: Sequence[Message]) -> list[Sentence]:
    raw = _sentences(messages)
    tf = Counter(w for *_, text in raw for w in _words(text))
    if not tf:
        return []
    top = max(tf.values())
    scored: list[Sentence] = []
    n_messages = max(len(messages), 1)
    for order, (mi, si, role, text) in enumerate(raw):
        words = _words(text)
        if not words:
            continue
        weight = sum(tf[w] / top for w in words) / len(words)
        lead = 1.0 + 0.5 / (1 + si)  # the first sentence of a message: x1.5, the second x1.25
        recency = 1.0 + 0.25 * (mi + 1) / n_messages
        line = f"- {role}: {text}"
        scored.append(Sentence(order, role, line, weight * lead * recency, count_text(line) + 1))
    return scored


def _similar(a: frozenset[str], b: frozenset[str]) -> bool:
    return len(a & b) >= NEAR_DUPLICATE * len(a | b)


def summarise(messages: Sequence[Message], budget: int) -> Message | None:
    """A system message summarising ``messages`` in at most ``budget`` tokens, or None."""
    header = Message(role="system", content=HEADER)
    room = budget - count_message(header)
    chosen: list[Sentence] = []
    seen: list[frozenset[str]] = []
    for s in sorted(score_sentences(messages), key=lambda s: (-s.score, s.order)):
        words = frozenset(_words(s.text))
        if s.cost > room or any(_similar(words, other) for other in seen):
            continue
        chosen.append(s)
        seen.append(words)
        room -= s.cost
    if not chosen:
        return None
    lines = [s.text for s in sorted(chosen, key=lambda s: s.order)]
    return Message(role="system", content="\n".join([HEADER, *lines]))
