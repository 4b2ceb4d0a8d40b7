"""relay.example.yaml is a real, loadable catalogue, and the docs' example loads too."""

from __future__ import annotations

import re
from pathlib import Path

from relay_core.catalogue.availability import enabled_providers
from relay_core.catalogue.loader import load_catalogue, parse_catalogue
from relay_core.catalogue.models import Tier
from relay_core.settings import Mode

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "relay.example.yaml"
PROVIDERS = [
    "groq",
    "gemini",
    "mistral",
    "cerebras",
    "openrouter",
    "cloudflare",
    "nvidia",
    "together",
    "deepseek",
    "ollama",
    "openai",
    "anthropic",
]


def test_the_example_loads_with_all_twelve_providers() -> None:
    catalogue = load_catalogue(EXAMPLE)
    assert [p.name for p in catalogue.providers] == PROVIDERS
    assert all(p.models for p in catalogue.providers)


def test_the_example_marks_paid_providers_honestly() -> None:
    catalogue = load_catalogue(EXAMPLE)
    paid = {p.name for p in catalogue.providers if p.tier is Tier.paid}
    assert paid == {"together", "deepseek", "openai", "anthropic"}


def test_the_example_wire_families_and_keys() -> None:
    catalogue = load_catalogue(EXAMPLE)
    by_name = {p.name: p for p in catalogue.providers}
    assert by_name["gemini"].api == "gemini"
    assert by_name["anthropic"].api == "anthropic"
    assert by_name["ollama"].api == "ollama"
    assert by_name["ollama"].api_key_env is None
    assert all(p.api_key_env for name, p in by_name.items() if name != "ollama")
    assert by_name["openrouter"].limits.rpm == 20
    assert by_name["openrouter"].limits.rpd == 50
    gemini_flash = by_name["gemini"].model("gemini-2.5-flash")
    assert gemini_flash is not None and gemini_flash.limits is not None
    assert gemini_flash.limits.daily_reset == "00:00 America/Los_Angeles"


def test_the_example_cloudflare_url_needs_the_account_variable() -> None:
    catalogue = load_catalogue(EXAMPLE)
    env = {"CLOUDFLARE_API_TOKEN": "token", "CLOUDFLARE_ACCOUNT_ID": "acct"}
    enabled, _ = enabled_providers(catalogue, Mode.free, environ=env)
    assert [(p.name, p.base_url) for p in enabled if p.name == "cloudflare"] == [
        ("cloudflare", "https://api.cloudflare.com/client/v4/accounts/acct/ai/v1")
    ]


def test_the_docs_catalogue_example_loads() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)
    assert blocks, "docs/configuration.md has no yaml example"
    for block in blocks:
        assert parse_catalogue(block, "docs/configuration.md").providers


def test_every_setting_is_documented_and_nothing_else() -> None:
    from relay_core.settings import Settings

    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(RELAY_[A-Z0-9_]+)` \|", text, flags=re.MULTILINE))
    expected = {f"RELAY_{name.upper()}" for name in Settings.model_fields}
    assert documented == expected
