"""The task family of a prompt, from cue words: no model, no network, a bounded cost.

Each family has weighted cues (regular expressions over the lower-cased text); the family
with the highest total wins, chat when none reaches :data:`THRESHOLD`. Only the head and the
tail of a long prompt are read (:data:`HEAD_CHARS`, :data:`TAIL_CHARS`): the instruction is
almost always at one end, and a 32k-token document costs no more than a short question.
Agreement with the labelled set (tests/fixtures/profile/labelled.jsonl) is measured by
tests/unit/profile/test_agreement.py and given in docs/routing.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from relay_core.profile.models import TaskFamily

HEAD_CHARS = 600
TAIL_CHARS = 300
THRESHOLD = 2.0
# Asked for JSON: the answer is data pulled from the prompt more often than not.
JSON_BONUS = 2.5

_LANGUAGES = (
    r"english|french|german|spanish|italian|portuguese|dutch|polish|russian|ukrainian|"
    r"japanese|chinese|mandarin|korean|arabic|hindi|turkish|swedish|norwegian|danish|"
    r"finnish|greek|czech|hungarian|romanian|hebrew|vietnamese|thai|indonesian|catalan|"
    r"latin|swahili|persian|bengali|urdu"
)
_CODE_WORDS = (
    r"python|javascript|typescript|java|rust|golang|c\+\+|c#|kotlin|swift|ruby|php|bash|"
    r"sql|html|css|haskell|scala|elixir|lua|perl"
)

# (family, weight, pattern): a cue found any number of times counts once.
_CUES: tuple[tuple[TaskFamily, float, str], ...] = (
    (TaskFamily.translation, 3.0, r"\btranslat(e|es|ed|ion|ing)\b"),
    (TaskFamily.translation, 2.5, rf"\b(in|into|to) ({_LANGUAGES})\b"),
    (TaskFamily.translation, 1.0, rf"\b({_LANGUAGES})\b"),
    (TaskFamily.translation, 3.0, r"\b(traduis|traduce|traduz|übersetze|traduci)"),
    (TaskFamily.translation, 2.0, r"\bhow do (you|i) say\b|\bwhat is .{1,40} in \w+\?"),
    (TaskFamily.summarisation, 3.0, r"\bsummar(y|ise|ize|ised|ized|ising|izing)\b"),
    (TaskFamily.summarisation, 3.0, r"\btl;?dr\b|\brecap\b|\bcondense\b|\bgist\b"),
    (TaskFamily.summarisation, 2.0, r"\b(key|main) (points|takeaways|ideas)\b"),
    (TaskFamily.summarisation, 2.0, r"\bin (one|two|three|a few|\d+) (sentences?|bullets?)\b"),
    (TaskFamily.summarisation, 2.0, r"\bshorten\b|\bsum up\b|\boverview of (this|the following)\b"),
    (TaskFamily.coding, 3.0, r"```|\bdef \w+\(|\bfunction \w*\(|\bclass \w+[:({]"),
    (TaskFamily.coding, 2.5, rf"\b({_CODE_WORDS})\b"),
    (
        TaskFamily.coding,
        2.0,
        r"\b(react|pandas|numpy|django|flask|fastapi|node|docker|kubernetes|dataframe|"
        r"usestate|useeffect|setstate|time complexity|big-o|operator|implement)\b",
    ),
    (
        TaskFamily.coding,
        2.0,
        r"\b(code|function|method|script|compile[sd]?|compiler|bug|debug|refactor|regex|"
        r"unit tests?|stack trace|traceback|exception|api endpoint|query|algorithm|"
        r"dockerfile|makefile|git|npm|pip|segfault|null pointer)\b",
    ),
    (TaskFamily.coding, 1.5, r"[a-z_]+\([^)]*\)\s*[;{:]|=>|->|::|\+\+|!=|==|\bimport \w+"),
    (TaskFamily.extraction, 3.0, r"\bextract(s|ed|ing)?\b|\bpull out\b|\bparse (this|the)\b"),
    (TaskFamily.extraction, 2.5, r"\b(as|in|return|output|into) (valid )?json\b|\bjson object\b"),
    (
        TaskFamily.extraction,
        2.0,
        r"\b(fields?|entities|named entities|key-value|invoice number|dates? and amounts?|"
        r"structured data|the following (fields|attributes)|list (all|every) (the )?"
        r"(names|dates|emails|people|companies|products|amounts))\b",
    ),
    (TaskFamily.extraction, 1.5, r"\bclassify\b|\blabel (each|the)\b|\bsentiment\b"),
    (
        TaskFamily.reasoning,
        3.0,
        r"\b(solve|prove|proof|calculate|compute|derivative|integral|equation|theorem|"
        r"probability|riddle|puzzle|logic|deduce)\b",
    ),
    (TaskFamily.reasoning, 2.0, r"\bstep[- ]by[- ]step\b|\bhow many\b|\bhow much\b|\bwhat is \d"),
    (TaskFamily.reasoning, 2.0, r"\d+\s*[-+*/^\u00d7\u00f7]\s*\d+|\b\d+x\b|\bx\^?2\b|√|∫|∑"),
    (
        TaskFamily.reasoning,
        2.0,
        r"\b(show that|expected value|least common|greatest common|is (the|this) .{0,30}"
        r"valid|show the working|how long (will|would|does|together))",
    ),
    (TaskFamily.reasoning, 1.0, r"\d.*\?|\?.*\d"),  # a question about numbers
    (
        TaskFamily.reasoning,
        2.0,
        r"\b(percent|average|ratio|sum of|product of|prime|factorial|divisible|remainder|"
        r"per hour|km/h|mph|interest rate)\b",
    ),
)

_COMPILED = tuple((family, weight, re.compile(pattern)) for family, weight, pattern in _CUES)
# Ties go to the more specific family (the order of this tuple).
_ORDER = (
    TaskFamily.translation,
    TaskFamily.summarisation,
    TaskFamily.extraction,
    TaskFamily.coding,
    TaskFamily.reasoning,
    TaskFamily.chat,
)


def excerpt(text: str) -> str:
    """The part of ``text`` the cues are read in: its head and tail, lower-cased."""
    if len(text) > HEAD_CHARS + TAIL_CHARS:
        text = f"{text[:HEAD_CHARS]}\n{text[-TAIL_CHARS:]}"
    return text.lower()


def cue_scores(text: str, *, wants_json: bool = False) -> Mapping[TaskFamily, float]:
    """Each family's cue total for ``text`` (already cut by :func:`excerpt`)."""
    scores = dict.fromkeys(TaskFamily, 0.0)
    for family, weight, pattern in _COMPILED:
        if pattern.search(text):
            scores[family] += weight
    if wants_json:
        scores[TaskFamily.extraction] += JSON_BONUS
    return MappingProxyType(scores)


def classify(text: str, *, wants_json: bool = False) -> TaskFamily:
    scores = cue_scores(excerpt(text), wants_json=wants_json)
    best = max(_ORDER, key=lambda f: (scores[f], -_ORDER.index(f)))
    return best if scores[best] >= THRESHOLD else TaskFamily.chat
