"""Prompt and transform templates: Jinja2 in its immutable sandbox, strict about names.

A template sees ``input`` (the run's input), ``steps`` (each step visited so far, by name: its
latest visit's ``output``, ``text``, ``json``, ``valid``, ``error`` and ``label``) and
``last`` (the step visited just before). The sandbox refuses attribute tricks and mutation;
``StrictUndefined`` makes a name that is not there an error when rendered, never an empty
string. :func:`compile_template` parses at load time, so a template that does not parse (or
names a step the workflow does not have: :func:`steps_named`) is a load-time error.

Filters beyond Jinja's own: ``json`` (the value as compact JSON, not HTML-escaped as
``tojson`` is).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import orjson
from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, nodes
from jinja2.environment import Template
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = ["TemplateProblem", "compile_template", "render", "steps_named"]

MAX_RENDERED_CHARS = 1_000_000


class TemplateProblem(ValueError):
    """A template that does not parse, or that failed to render (the message says why)."""


def _json(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


@functools.cache
def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
    )
    env.filters["json"] = _json
    return env


@functools.lru_cache(maxsize=1024)
def compile_template(text: str) -> Template:
    """The template ``text``, parsed; :class:`TemplateProblem` when it does not parse."""
    try:
        return _environment().from_string(text)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(
            f"template does not parse (line {exc.lineno}): {exc.message}"
        ) from None


def steps_named(text: str) -> set[str]:
    """The step names ``text`` reads as ``steps.<name>`` or ``steps['<name>']``."""
    try:
        tree = _environment().parse(text)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(
            f"template does not parse (line {exc.lineno}): {exc.message}"
        ) from None
    names: set[str] = set()
    for node in tree.find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name == "steps":
            names.add(node.attr)
    for item in tree.find_all(nodes.Getitem):
        if not (isinstance(item.node, nodes.Name) and item.node.name == "steps"):
            continue
        if isinstance(item.arg, nodes.Const) and isinstance(item.arg.value, str):
            names.add(item.arg.value)
    return names


def render(text: str, context: Mapping[str, object]) -> str:
    """``text`` rendered with ``context``; :class:`TemplateProblem` when it cannot be (a name
    that is not there, a sandbox refusal, an output over a million characters)."""
    try:
        out = compile_template(text).render(dict(context))
    except TemplateError as exc:
        raise TemplateProblem(f"template failed: {exc.message or type(exc).__name__}") from None
    except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise TemplateProblem(f"template failed: {exc}") from None
    if len(out) > MAX_RENDERED_CHARS:
        raise TemplateProblem(f"template rendered over {MAX_RENDERED_CHARS} characters")
    return out
