"""Loading the provider catalogue, strictly, at boot.

:func:`load_catalogue` reads a YAML file and validates it with the models in
:mod:`relay_core.catalogue.models`. Anything wrong raises :class:`CatalogueError` listing every
problem (not just the first), one line each, naming the file and line, the provider, the field
path, what is wrong and the fix. :func:`resolve_catalogue` picks the catalogue a process uses:
``RELAY_CONFIG``, else ``./relay.yaml``, else the built-in demo catalogue.

:func:`enabled_providers` and :func:`log_startup` (from
:mod:`relay_core.catalogue.availability`) are re-exported here for callers at start-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from relay_core.catalogue.availability import Availability, enabled_providers, log_startup
from relay_core.catalogue.checks import COVERED_TYPES, raw_problems
from relay_core.catalogue.explain import explain
from relay_core.catalogue.models import Catalogue
from relay_core.catalogue.problems import Problem
from relay_core.catalogue.source import CatalogueOrigin, CatalogueSource
from relay_core.catalogue.yamldoc import YamlDoc, YamlSyntaxError, parse_yaml
from relay_core.settings import Settings

__all__ = [
    "Availability",
    "CatalogueError",
    "CatalogueOrigin",
    "CatalogueSource",
    "enabled_providers",
    "load_catalogue",
    "log_startup",
    "parse_catalogue",
    "resolve_catalogue",
]


class CatalogueError(Exception):
    """The catalogue cannot be used. ``problems`` holds one self-contained line per problem."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.source = source
        self.problems = tuple(problems)


def _syntax(source: str, err: YamlSyntaxError) -> str:
    where = f"{source}:{err.line}" if err.line is not None else source
    column = f" (column {err.column})" if err.column is not None else ""
    return (
        f"{where}: YAML syntax error: {err.problem}{column}. "
        "Fix: check the indentation, colons and quotes on that line and the one before."
    )


def _shape_problem(data: object) -> Problem | None:
    """A file that is not a mapping at all gets one plain sentence, not pydantic's."""
    if data is None:
        return Problem((), "the file is empty", "add a 'providers:' list (see relay.example.yaml)")
    if not isinstance(data, dict):
        return Problem(
            (),
            f"the file must be a YAML mapping with a 'providers' list, not a {type(data).__name__}",
            "start the file with 'providers:' (see relay.example.yaml)",
        )
    return None


def _validate(doc: YamlDoc) -> tuple[Catalogue | None, list[Problem]]:
    shape = _shape_problem(doc.data)
    if shape is not None:
        return None, [shape]
    problems = raw_problems(doc)
    try:
        catalogue = Catalogue.model_validate(doc.data)
    except ValidationError as exc:
        errors = exc.errors()
        uncovered = [e for e in errors if e["type"] not in COVERED_TYPES]
        # The raw checks report duplicates in full; if they somehow found none, keep pydantic's.
        chosen = uncovered if (uncovered or problems) else errors
        return None, problems + [explain(e) for e in chosen]
    return catalogue, problems


def parse_catalogue(text: str, source: str = "<catalogue>") -> Catalogue:
    """Validate catalogue YAML ``text``; ``source`` names it in messages (usually the path)."""
    try:
        doc = parse_yaml(text)
    except YamlSyntaxError as err:
        raise CatalogueError(source, [_syntax(source, err)]) from None
    catalogue, problems = _validate(doc)
    if problems or catalogue is None:
        problems.sort(key=lambda p: doc.line_of(p.loc) or 0)
        raise CatalogueError(source, [p.render(source, doc) for p in problems])
    return catalogue


def load_catalogue(path: Path) -> Catalogue:
    """Read and validate the catalogue file at ``path``; raise :class:`CatalogueError`."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        fix = "check the path (relay.example.yaml is a complete example to copy)"
        raise CatalogueError(source, [f"{source}: no such file. Fix: {fix}."]) from None
    except UnicodeDecodeError:
        fix = "save the file as UTF-8"
        raise CatalogueError(source, [f"{source}: not UTF-8 text. Fix: {fix}."]) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        fix = "point to a readable YAML file"
        raise CatalogueError(source, [f"{source}: cannot read ({reason}). Fix: {fix}."]) from None
    return parse_catalogue(text, source)


def resolve_catalogue(settings: Settings) -> tuple[Catalogue, CatalogueSource]:
    """The catalogue this process uses.

    ``RELAY_DEMO`` true: the demo catalogue, whatever files exist. Else ``RELAY_CONFIG`` (a
    missing file is an error: a typo must not silently fall back to the demo), else
    ``./relay.yaml`` when it exists, else the demo catalogue.
    """
    if settings.demo:
        return _demo(settings)
    if settings.config is not None:
        path = settings.config
        if not path.is_file():
            fix = "correct RELAY_CONFIG, or unset it to use ./relay.yaml or the demo catalogue"
            line = f"{path}: RELAY_CONFIG names a file that does not exist. Fix: {fix}."
            raise CatalogueError(str(path), [line])
        return load_catalogue(path), CatalogueSource(CatalogueOrigin.env, path)
    path_or_none = settings.catalogue_path()
    if path_or_none is not None:
        return load_catalogue(path_or_none), CatalogueSource(CatalogueOrigin.cwd, path_or_none)
    return _demo(settings)


def _demo(settings: Settings) -> tuple[Catalogue, CatalogueSource]:
    from relay_core.catalogue.demo import demo_catalogue

    return demo_catalogue(settings.sim_url), CatalogueSource(CatalogueOrigin.demo)
