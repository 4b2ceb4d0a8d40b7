"""When a transition is taken: a tiny typed grammar, parsed once at load time.

    condition := "always"
               | "valid" | "invalid"                       after a validate step, or a model
                                                           step with a response_format
               | "label" ("==" | "!=") LABEL               after a classify step
               | "label" ["not"] "in" "[" LABEL ("," LABEL)* "]"

``LABEL`` is a bare word (letters, digits, ``_ - .``) or a quoted string. Nothing else parses:
a condition that does not is a load-time error naming the workflow, the step and the rule,
never a condition that holds. There is no code in a condition, so nothing to evaluate but
these four shapes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Condition", "ConditionError", "Shape", "parse_condition"]

_WORD = r"[A-Za-z0-9_][A-Za-z0-9_.-]*"
_LABEL = rf"(?:{_WORD}|'[^']*'|\"[^\"]*\")"
_COMPARE = re.compile(rf"^label\s*(==|!=)\s*({_LABEL})$")
_MEMBER = re.compile(rf"^label\s+(not\s+)?in\s*\[\s*({_LABEL}(?:\s*,\s*{_LABEL})*)\s*\]$")
_ITEM = re.compile(_LABEL)


class ConditionError(ValueError):
    """The text is not a condition (the message says what would be)."""


class Shape(StrEnum):
    always = "always"
    valid = "valid"
    invalid = "invalid"
    label = "label"


@dataclass(frozen=True, slots=True)
class Condition:
    shape: Shape
    labels: frozenset[str] = frozenset()  # for ``label``: the labels it names
    negated: bool = False  # ``!=`` / ``not in``

    def holds(self, valid: bool | None, label: str | None) -> bool:
        """Whether the condition holds for a step's outcome (``valid`` None: not checked;
        ``label`` None: no label). A condition about what a step did not do never holds."""
        if self.shape is Shape.always:
            return True
        if self.shape is Shape.valid:
            return valid is True
        if self.shape is Shape.invalid:
            return valid is False
        if label is None:
            return False
        return (label in self.labels) != self.negated

    def __str__(self) -> str:
        if self.shape is not Shape.label:
            return self.shape.value
        names = sorted(self.labels)
        if len(names) == 1:
            return f"label {'!=' if self.negated else '=='} {names[0]}"
        return f"label {'not in' if self.negated else 'in'} [{', '.join(names)}]"


def _unquote(token: str) -> str:
    return token[1:-1] if token[:1] in "'\"" else token


def parse_condition(text: str) -> Condition:
    """The condition ``text`` says; :class:`ConditionError` when it says none."""
    clean = " ".join(text.split())
    if clean in (Shape.always.value, Shape.valid.value, Shape.invalid.value):
        return Condition(Shape(clean))
    found = _COMPARE.match(clean)
    if found is not None:
        return Condition(Shape.label, frozenset([_unquote(found[2])]), found[1] == "!=")
    found = _MEMBER.match(clean)
    if found is not None:
        labels = frozenset(_unquote(t) for t in _ITEM.findall(found[2]))
        return Condition(Shape.label, labels, bool(found[1]))
    raise ConditionError(
        f"{text!r} is not a condition: write always, valid, invalid, label == x, "
        "label != x, label in [x, y] or label not in [x, y]"
    )
