"""Checks on the raw file that pydantic alone would report too late, or not at all.

Pydantic runs a model's cross-field validators only when every field of that model is valid, so
a duplicate provider name next to a bad ``rpm`` would surface only after the ``rpm`` is fixed.
These checks run on the parsed YAML directly, always, and find every duplicate at once:

- a key written twice in one mapping (YAML silently keeps the last);
- two providers with the same name;
- a model id or alias given twice within one provider (aliases may repeat across providers:
  that is what pooling is for);
- two policies with the same name, and a policy naming a provider or model the catalogue
  does not have.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from relay_core.catalogue.models import unknown_target
from relay_core.catalogue.problems import Problem
from relay_core.catalogue.yamldoc import YamlDoc

# The pydantic error types these checks already cover (raised by the models' own validators).
COVERED_TYPES = frozenset({"duplicate_provider", "duplicate_model", "policy_reference"})
POLICY_TARGETS = ("prefer", "exclude", "require")


def _entries(items: object) -> Iterator[tuple[int, Mapping[object, object]]]:
    if isinstance(items, list):
        for index, item in enumerate(items):
            if isinstance(item, Mapping):
                yield index, item


def _where(doc: YamlDoc, *loc: str | int) -> str:
    line = doc.line_of(loc)
    return f"line {line}" if line is not None else "earlier"


def _duplicate_keys(doc: YamlDoc) -> Iterator[Problem]:
    for dup in doc.duplicate_keys():
        yield Problem(
            dup.loc,
            f"written twice in the same mapping (first on line {dup.first_line}); "
            "YAML would silently keep only the last",
            "keep one of them",
        )


def _duplicate_providers(doc: YamlDoc) -> Iterator[Problem]:
    first: dict[str, int] = {}
    for index, provider in _entries(_get(doc.data, "providers")):
        name = provider.get("name")
        if not isinstance(name, str):
            continue
        if name in first:
            yield Problem(
                ("providers", index, "name"),
                f"{name!r} is already the name of the provider at "
                f"{_where(doc, 'providers', first[name])}",
                f"give each provider a unique name (e.g. {name}-2)",
            )
        first.setdefault(name, index)


def _model_names(model: Mapping[object, object]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """The model's id and aliases, each with its path inside the model."""
    names: list[tuple[tuple[str | int, ...], object]] = [(("id",), model.get("id"))]
    aliases = model.get("aliases")
    if isinstance(aliases, list):
        names += [(("aliases", i), alias) for i, alias in enumerate(aliases)]
    for sub, value in names:
        if isinstance(value, str):
            yield sub, value


def _duplicate_models(doc: YamlDoc) -> Iterator[Problem]:
    for p_index, provider in _entries(_get(doc.data, "providers")):
        seen: dict[str, int] = {}  # id or alias -> index of the model that has it
        for m_index, model in _entries(provider.get("models")):
            for sub, value in _model_names(model):
                if value in seen:
                    owner = "this model" if seen[value] == m_index else "another model"
                    where = _where(doc, "providers", p_index, "models", seen[value])
                    yield Problem(
                        ("providers", p_index, "models", m_index, *sub),
                        f"{value!r} is already an id or alias of {owner} ({where})",
                        "give each model id and alias only once within a provider",
                    )
                seen.setdefault(value, m_index)


def _get(data: object, key: object) -> object:
    return data.get(key) if isinstance(data, Mapping) else None


def _known_targets(doc: YamlDoc) -> dict[str, set[str]]:
    known: dict[str, set[str]] = {}
    for _, provider in _entries(_get(doc.data, "providers")):
        name = provider.get("name")
        if isinstance(name, str):
            models = known.setdefault(name, set())
            for _, model in _entries(provider.get("models")):
                models.update(value for _, value in _model_names(model))
    return known


def _policy_refs(policy: Mapping[object, object]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    for action in POLICY_TARGETS:
        refs = _get(policy.get(action), "providers")
        if isinstance(refs, list):
            for i, ref in enumerate(refs):
                if isinstance(ref, str):
                    yield (action, "providers", i), ref


def _policy_problems(doc: YamlDoc) -> Iterator[Problem]:
    known = _known_targets(doc)
    first: dict[str, int] = {}
    for index, policy in _entries(_get(doc.data, "policies")):
        name = policy.get("name")
        if isinstance(name, str):
            if name in first:
                yield Problem(
                    ("policies", index, "name"),
                    f"{name!r} is already the name of the policy at "
                    f"{_where(doc, 'policies', first[name])}",
                    "give each policy a unique name",
                )
            first.setdefault(name, index)
        for sub, ref in _policy_refs(policy):
            why = unknown_target(known, ref)
            if why is not None:
                yield Problem(
                    ("policies", index, *sub),
                    why,
                    "name a provider (or provider/model) listed under providers",
                )


def raw_problems(doc: YamlDoc) -> list[Problem]:
    """Every duplicate and unknown policy target in the file, in file order within each kind."""
    return [
        *_duplicate_keys(doc),
        *_duplicate_providers(doc),
        *_duplicate_models(doc),
        *_policy_problems(doc),
    ]
