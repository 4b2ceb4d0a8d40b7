"""Helpers for the catalogue tests: YAML snippets in, problem lines out."""

from __future__ import annotations

import os
import textwrap

import pytest

from relay_core.catalogue.loader import CatalogueError, parse_catalogue
from relay_core.catalogue.models import Catalogue

SOURCE = "relay.yaml"

# One valid provider; tests change one thing at a time.
GROQ = """\
  - name: groq
    api: openai
    base_url: https://api.groq.com/openai/v1
    api_key_env: GROQ_API_KEY
    limits: {rpm: 30}
    models:
      - id: llama-3.1-8b-instant
        aliases: [llama-3.1-8b]
"""


def load(text: str) -> Catalogue:
    return parse_catalogue(textwrap.dedent(text), SOURCE)


def problems(text: str) -> list[str]:
    """The problem lines for an invalid catalogue (fails the test if it is valid)."""
    with pytest.raises(CatalogueError) as caught:
        load(text)
    assert str(caught.value) == "\n".join(caught.value.problems)
    return list(caught.value.problems)


def only_problem(text: str) -> str:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No RELAY_* settings and no provider keys from the developer's shell."""
    for name in list(os.environ):
        if name.startswith("RELAY_") or name.endswith(("_API_KEY", "_API_TOKEN", "_ACCOUNT_ID")):
            monkeypatch.delenv(name)
    return monkeypatch
