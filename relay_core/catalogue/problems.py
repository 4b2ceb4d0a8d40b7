"""One problem in a catalogue file, and how it is written for a person.

Every problem renders as one line that names the file (and line), where in the file it is (the
provider by name when it has one, the model by id, then the field path), what is wrong and the
fix::

    relay.yaml:14: provider 'groq' → limits.rpm: must be a positive integer (got 0). Fix: set a
    value > 0 or remove the field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from relay_core.catalogue.yamldoc import Loc, YamlDoc


@dataclass(frozen=True)
class Problem:
    loc: Loc
    what: str  # no trailing period
    fix: str

    def render(self, source: str, doc: YamlDoc | None) -> str:
        line = doc.line_of(self.loc) if doc is not None else None
        where = f"{source}:{line}" if line is not None else source
        fix = self.fix.rstrip(".")
        if self.loc:
            where += f": {describe(self.loc, doc.data if doc else None)}"
        return f"{where}: {self.what}. Fix: {fix}."


def _item(items: object, index: int) -> object:
    return items[index] if isinstance(items, list) and 0 <= index < len(items) else None


def _get(data: object, key: str) -> object:
    return data.get(key) if isinstance(data, Mapping) else None


def _label(kind: str, items: object, index: int, key: str) -> str:
    """``provider 'groq'`` when the entry has a usable name, else ``providers[3]``."""
    name = _get(_item(items, index), key)
    if isinstance(name, str) and name.strip():
        return f"{kind} {name!r}"
    return f"{kind.removesuffix('y')}ies[{index}]" if kind.endswith("y") else f"{kind}s[{index}]"


def _path(parts: Sequence[str | int]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def describe(loc: Loc, data: object) -> str:
    """Where ``loc`` is, in words: ``provider 'groq' → model 'x' → limits.rpm``, or
    ``policy 'json-first' → exclude.providers[0]`` (``policies[2]`` when it has no name)."""
    if not loc:
        return "top level"
    if loc[0] in ("policies", "workflows") and len(loc) >= 2 and isinstance(loc[1], int):
        kind = "policy" if loc[0] == "policies" else "workflow"
        words = [_label(kind, _get(data, loc[0]), loc[1], "name")]
        return " → ".join(words + ([_path(loc[2:])] if loc[2:] else []))
    if loc[0] != "providers" or len(loc) < 2 or not isinstance(loc[1], int):
        return _path(loc)
    providers = _get(data, "providers")
    words = [_label("provider", providers, loc[1], "name")]
    rest = loc[2:]
    if len(rest) >= 2 and rest[0] == "models" and isinstance(rest[1], int):
        models = _get(_item(providers, loc[1]), "models")
        words.append(_label("model", models, rest[1], "id"))
        rest = rest[2:]
    if rest:
        words.append(_path(rest))
    return " → ".join(words)
