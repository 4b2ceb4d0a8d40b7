"""Pydantic's validation errors, explained: what is wrong and how to fix it.

Translated by table, keyed on pydantic's error ``type`` (and the field for the few fields that
deserve their own words), never by reading pydantic's message. Errors raised by the catalogue's
own validators carry their fix in ``ctx['fix']``. Values are echoed only for fields that cannot
hold a secret (a key pasted into the wrong place must not end up in a log).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Literal, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from relay_core.catalogue.models import DAILY_RESET_ZONES, Catalogue
from relay_core.catalogue.problems import Problem
from relay_core.policy.models import Policy

# Fields whose values are safe to repeat back (never a credential).
_ECHO = frozenset({"api", "tier", "scale", "daily_reset", "name", "id", "aliases", "type"})
# Fields whose values are never repeated back, whatever their type.
_NEVER_ECHO = frozenset({"api_key_env", "base_url", "headers"})
_SECRET_NAMES = frozenset({"api_key", "apikey", "key", "token", "api_token", "secret", "password"})
_EXAMPLES = {
    "name": "name: groq",
    "api": "api: openai",
    "base_url": "base_url: https://api.groq.com/openai/v1",
    "models": "models: [{id: llama-3.1-8b-instant}]",
    "id": "id: llama-3.1-8b-instant",
    "providers": "providers: [...] (see relay.example.yaml)",
    "type": "type: [text, coding]",
    "aliases": "aliases: [fast]",
}
_ZONES = " or ".join(f'"HH:MM {zone}"' for zone in DAILY_RESET_ZONES[:2])


@dataclass(frozen=True)
class ErrorView:
    """One pydantic error, with the model and field it concerns."""

    kind: str  # pydantic's error type
    field: str | None
    owner: type[BaseModel] | None
    input: object
    ctx: Mapping[str, object]
    msg: str

    def got(self) -> str:
        value = self.input
        if self.field in _NEVER_ECHO:
            return ""
        if value is None:
            return " (got an empty value)"
        if isinstance(value, bool | int | float):
            return f" (got {value!r})"
        if isinstance(value, str) and self.field in _ECHO and len(value) <= 80:
            return f" (got {value!r})"
        return ""

    def optional(self) -> bool:
        """Whether the field may be left out (it has a default)."""
        if self.owner is None or self.field not in self.owner.model_fields:
            return False
        return not self.owner.model_fields[self.field].is_required()

    def annotation_args(self) -> Iterator[object]:
        """Every type inside the field's annotation (``int`` in ``PositiveInt | None``)."""
        if self.owner is None or self.field not in self.owner.model_fields:
            return
        stack: list[object] = [self.owner.model_fields[self.field].annotation]
        while stack:
            current = stack.pop()
            yield current
            stack.extend(get_args(current))


Explainer = Callable[[ErrorView], tuple[str, str]]


def _nested_model(annotation: object) -> type[BaseModel] | None:
    stack = [annotation]
    while stack:
        current = stack.pop()
        if isinstance(current, type) and issubclass(current, BaseModel):
            return current
        stack.extend(get_args(current))
    return None


def _owner(loc: tuple[str | int, ...]) -> tuple[type[BaseModel] | None, str | None]:
    """The model holding the last named field of ``loc``, and that field's name."""
    model: type[BaseModel] | None = Catalogue
    owner: type[BaseModel] | None = None
    field: str | None = None
    for part in loc:
        if isinstance(part, int):
            continue
        if model is None:
            break
        owner, field = model, part
        info = model.model_fields.get(part)
        model = _nested_model(info.annotation) if info is not None else None
    return owner, field


def _choices(view: ErrorView) -> list[str]:
    out: list[str] = []
    for arg in view.annotation_args():
        if get_origin(arg) is Literal:
            out.extend(str(a) for a in get_args(arg))
        elif isinstance(arg, type) and issubclass(arg, Enum):
            out.extend(str(m.value) for m in arg)
    return out


def _missing(view: ErrorView) -> tuple[str, str]:
    if view.owner is Policy and view.field == "name":
        return "is required but missing", "add e.g. `name: json-to-groq` (errors name it)"
    example = _EXAMPLES.get(view.field or "", f"{view.field}: ...")
    return "is required but missing", f"add `{example}`"


def _unknown_field(view: ErrorView) -> tuple[str, str]:
    name = view.field or ""
    if name.lower() in _SECRET_NAMES:
        return "unknown field (keys never go in the catalogue)", (
            "remove it and name the environment variable instead, e.g. api_key_env: GROQ_API_KEY"
        )
    known = sorted(view.owner.model_fields) if view.owner is not None else []
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f"unknown field (did you mean {close[0]!r}?)", f"rename it to {close[0]!r}"
    return "unknown field", f"remove it (fields allowed here: {', '.join(known)})"


def _not_positive(view: ErrorView) -> tuple[str, str]:
    is_int = any(arg is int for arg in view.annotation_args())
    kind = "a positive integer" if is_int else "a positive number"
    fix = "set a value > 0 or remove the field" if view.optional() else "set a value > 0"
    return f"must be {kind}{view.got()}", fix


def _choice(view: ErrorView) -> tuple[str, str]:
    choices = _choices(view)
    value = str(view.input)
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    what = f"unknown value{view.got()}; known: {', '.join(choices)}"
    return what, f"{hint}use one of {', '.join(choices)}"


def _api(view: ErrorView) -> tuple[str, str]:
    what, fix = _choice(view)
    return what, f"{fix} (any OpenAI-compatible endpoint is api: openai)"


def _pattern(view: ErrorView) -> tuple[str, str]:
    return f"does not have the expected form {view.ctx.get('pattern')}", "see relay.example.yaml"


def _name(view: ErrorView) -> tuple[str, str]:
    what = "must be lowercase letters, digits, '-' or '_', starting with a letter or digit"
    return what + view.got(), "e.g. name: groq-2"


def _daily_reset(view: ErrorView) -> tuple[str, str]:
    return f"must be {_ZONES}{view.got()}", 'write it quoted, e.g. daily_reset: "00:00 UTC"'


def _daily_reset_type(view: ErrorView) -> tuple[str, str]:
    return (
        f'must be text such as "00:00 UTC"{view.got()} — YAML read it as a number',
        'quote it and add the zone, e.g. daily_reset: "00:00 UTC"',
    )


def _api_key_env(_view: ErrorView) -> tuple[str, str]:
    return (
        "must be the name of an environment variable (letters, digits, '_'), not the key itself",
        "write e.g. api_key_env: GROQ_API_KEY and export GROQ_API_KEY in the environment",
    )


def _base_url_form(_view: ErrorView) -> tuple[str, str]:
    return "must start with http:// or https://", "e.g. base_url: https://api.groq.com/openai/v1"


def _version(view: ErrorView) -> tuple[str, str]:
    return f"unsupported catalogue version{view.got()}; this Relay reads version 1", (
        "set version: 1, or upgrade Relay"
    )


def _simple(what: str, fix: str) -> Explainer:
    return lambda view: (what.format(got=view.got()), fix)


def _listed(view: ErrorView) -> tuple[str, str]:
    example = _EXAMPLES.get(view.field or "", f"{view.field}: [a, b]")
    return f"must be a list{view.got()}", f"write it as a YAML list, e.g. {example}"


_BY_TYPE: dict[str, Explainer] = {
    "missing": _missing,
    "extra_forbidden": _unknown_field,
    "greater_than": _not_positive,
    "less_than_equal": lambda v: (f"must be at most {v.ctx.get('le')}{v.got()}", "lower it"),
    "greater_than_equal": lambda v: (f"must be at least {v.ctx.get('ge')}{v.got()}", "raise it"),
    "literal_error": _choice,
    "enum": _choice,
    "string_pattern_mismatch": _pattern,
    "list_type": _listed,
    "int_type": _simple("must be a whole number{got}", "write a number without quotes"),
    "int_parsing": _simple("must be a whole number{got}", "write a number without quotes"),
    "int_from_float": _simple("must be a whole number{got}", "drop the fraction"),
    "float_type": _simple("must be a number{got}", "write a number without quotes"),
    "float_parsing": _simple("must be a number{got}", "write a number without quotes"),
    "bool_type": _simple("must be true or false{got}", "write true or false"),
    "bool_parsing": _simple("must be true or false{got}", "write true or false"),
    "string_type": _simple("must be text{got}", "quote the value"),
    "string_too_short": _simple("must not be empty", "give it a value or remove the field"),
    "too_short": _simple("must list at least one entry", "add an entry (see relay.example.yaml)"),
    "dict_type": _simple("must be a mapping of key: value pairs", "see relay.example.yaml"),
    "model_type": _simple("must be a mapping of key: value pairs", "see relay.example.yaml"),
    "model_attributes_type": _simple("must be a mapping of key: value pairs", "see the docs"),
}
_BY_FIELD: dict[tuple[str, str], Explainer] = {
    ("name", "string_pattern_mismatch"): _name,
    ("daily_reset", "string_pattern_mismatch"): _daily_reset,
    ("daily_reset", "string_type"): _daily_reset_type,
    ("api_key_env", "string_pattern_mismatch"): _api_key_env,
    ("base_url", "string_pattern_mismatch"): _base_url_form,
    ("api", "literal_error"): _api,
    ("version", "literal_error"): _version,
    ("providers", "model_type"): _simple(
        "must be a mapping with name, api, base_url and models", "see relay.example.yaml"
    ),
    ("models", "model_type"): _simple(
        "must be a mapping with at least an id", "write it as - id: <the provider's model id>"
    ),
    ("limits", "model_type"): _simple(
        "must be a mapping of limits", "write it as e.g. limits: {rpm: 30, rpd: 1000}"
    ),
}


def explain(error: ErrorDetails) -> Problem:
    """One pydantic error as a :class:`Problem`."""
    loc = tuple(error["loc"])
    owner, field = _owner(loc)
    ctx: Mapping[str, object] = error.get("ctx", {})
    view = ErrorView(error["type"], field, owner, error.get("input"), ctx, error["msg"])
    if "fix" in ctx:  # raised by the catalogue's own validators
        return Problem(loc, error["msg"], str(ctx["fix"]))
    explainer = _BY_FIELD.get((field or "", view.kind)) or _BY_TYPE.get(view.kind)
    if explainer is None:
        return Problem(loc, error["msg"], "see docs/configuration.md")
    what, fix = explainer(view)
    return Problem(loc, what, fix)
