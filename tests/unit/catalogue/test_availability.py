"""Which providers a process may use: keys, ${VAR} in base_url, and the tier mode."""

from __future__ import annotations

import logging

import pytest

from relay_core.catalogue.availability import enabled_providers, log_startup
from relay_core.catalogue.models import Catalogue, ProviderConfig
from relay_core.catalogue.source import CatalogueOrigin, CatalogueSource
from relay_core.settings import Mode
from tests.unit.catalogue.conftest import GROQ, load

CLOUDFLARE = """\
  - name: cloudflare
    api: openai
    base_url: https://api.cloudflare.com/client/v4/accounts/${CLOUDFLARE_ACCOUNT_ID}/ai/v1
    api_key_env: CLOUDFLARE_API_TOKEN
    models: [{id: "@cf/meta/llama-3.1-8b-instruct"}]
"""
OPENAI = """\
  - name: openai
    api: openai
    base_url: https://api.openai.com/v1
    api_key_env: OPENAI_API_KEY
    tier: paid
    models: [{id: gpt-4o-mini}]
"""
OLLAMA = """\
  - name: ollama
    api: ollama
    base_url: http://127.0.0.1:11434
    models: [{id: "llama3.2:3b"}]
"""
SECRET = "sk-test-DO-NOT-PRINT-4242"


@pytest.fixture
def catalogue() -> Catalogue:
    return load("providers:\n" + GROQ + CLOUDFLARE + OPENAI + OLLAMA)


def names(providers: list[ProviderConfig]) -> list[str]:
    return [p.name for p in providers]


def test_missing_key_disables_with_one_clear_reason(catalogue: Catalogue) -> None:
    enabled, disabled = enabled_providers(catalogue, Mode.paid, environ={})
    assert names(enabled) == ["ollama"]
    reasons = {p.name: reason for p, reason in disabled}
    assert reasons == {
        "groq": "GROQ_API_KEY is not set",
        "cloudflare": "CLOUDFLARE_API_TOKEN is not set; "
        "CLOUDFLARE_ACCOUNT_ID (used in base_url) is not set",
        "openai": "OPENAI_API_KEY is not set",
    }


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_key_counts_as_missing(catalogue: Catalogue, value: str) -> None:
    enabled, _ = enabled_providers(catalogue, Mode.paid, environ={"GROQ_API_KEY": value})
    assert "groq" not in names(enabled)


def test_a_set_key_enables(catalogue: Catalogue) -> None:
    enabled, _ = enabled_providers(catalogue, Mode.paid, environ={"GROQ_API_KEY": SECRET})
    assert names(enabled) == ["groq", "ollama"]


def test_free_mode_disables_paid_tiers_and_says_so(catalogue: Catalogue) -> None:
    env = {"OPENAI_API_KEY": SECRET}
    enabled, disabled = enabled_providers(catalogue, Mode.free, environ=env)
    assert "openai" not in names(enabled)
    assert ("openai", "paid tier, and RELAY_MODE is free") in [(p.name, r) for p, r in disabled]


@pytest.mark.parametrize("mode", [Mode.auto, Mode.paid])
def test_auto_and_paid_modes_keep_paid_tiers(catalogue: Catalogue, mode: Mode) -> None:
    enabled, _ = enabled_providers(catalogue, mode, environ={"OPENAI_API_KEY": SECRET})
    assert "openai" in names(enabled)


def test_base_url_placeholders_are_expanded_for_enabled_providers(catalogue: Catalogue) -> None:
    env = {"CLOUDFLARE_API_TOKEN": SECRET, "CLOUDFLARE_ACCOUNT_ID": "abc123"}
    enabled, _ = enabled_providers(catalogue, Mode.free, environ=env)
    cloudflare = next(p for p in enabled if p.name == "cloudflare")
    assert cloudflare.base_url == "https://api.cloudflare.com/client/v4/accounts/abc123/ai/v1"
    # the catalogue itself is unchanged (it validates the same in every environment)
    unexpanded = catalogue.provider("cloudflare")
    assert unexpanded is not None
    assert "${CLOUDFLARE_ACCOUNT_ID}" in unexpanded.base_url


def test_a_missing_base_url_variable_disables_like_a_missing_key(catalogue: Catalogue) -> None:
    env = {"CLOUDFLARE_API_TOKEN": SECRET, "CLOUDFLARE_ACCOUNT_ID": ""}
    _, disabled = enabled_providers(catalogue, Mode.free, environ=env)
    reasons = {p.name: reason for p, reason in disabled}
    assert reasons["cloudflare"] == "CLOUDFLARE_ACCOUNT_ID (used in base_url) is not set"


def test_reads_the_process_environment_by_default(
    catalogue: Catalogue, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("GROQ_API_KEY", SECRET)
    enabled, _ = enabled_providers(catalogue, Mode.free)
    assert names(enabled) == ["groq", "ollama"]
    assert enabled[0].api_key() == SECRET


def test_log_startup_logs_one_line_per_disabled_provider_and_no_key(
    catalogue: Catalogue, caplog: pytest.LogCaptureFixture, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("GROQ_API_KEY", SECRET)
    clean_env.setenv("OPENAI_API_KEY", SECRET)
    availability = enabled_providers(catalogue, Mode.free)
    source = CatalogueSource(CatalogueOrigin.env, None)
    with caplog.at_level(logging.DEBUG, logger="relay.catalogue"):
        log_startup(source, *availability)
    records = [r for r in caplog.records if r.name == "relay.catalogue"]
    lines = [(r.levelno, r.getMessage()) for r in records]
    assert lines[0][0] == logging.INFO
    assert "2 of 4 providers enabled: groq, ollama" in lines[0][1]
    assert lines[1:] == [
        (
            logging.WARNING,
            "cloudflare: disabled — CLOUDFLARE_API_TOKEN is not set; "
            "CLOUDFLARE_ACCOUNT_ID (used in base_url) is not set",
        ),
        (logging.INFO, "openai: disabled — paid tier, and RELAY_MODE is free"),
    ]
    assert all(SECRET not in message for _, message in lines)
