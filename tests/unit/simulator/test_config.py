from __future__ import annotations

import pytest
from pydantic import ValidationError

from relay_core.catalogue.demo import demo_catalogue
from relay_core.catalogue.models import Catalogue, Limits, ModelConfig, ProviderConfig
from relay_sim.config import SimConfig, SimProvider, sim_base_url


def _catalogue(**provider) -> Catalogue:
    fields = {
        "name": "groq",
        "api": "openai",
        "base_url": "http://127.0.0.1:8900/groq/v1",
        "limits": Limits(rpm=30, tpm=6000, rpd=14400, daily_reset="00:00 America/Los_Angeles"),
        "models": [
            ModelConfig(id="llama", aliases=["l"], limits=Limits(rpm=5, concurrency=2)),
            ModelConfig(id="embed", embeddings=True, dimensions=16),
        ],
    }
    return Catalogue(providers=[ProviderConfig(**(fields | provider))])


def test_from_catalogue_takes_family_models_and_limits():
    config = SimConfig.from_catalogue(_catalogue())
    (p,) = config.providers
    assert (p.name, p.api, p.rpm, p.tpm, p.rpd) == ("groq", "openai", 30, 6000, 14400)
    assert p.daily_reset == "00:00 America/Los_Angeles"
    llama, embed = p.models
    assert (llama.id, llama.aliases, llama.rpm, llama.concurrency) == ("llama", ["l"], 5, 2)
    assert embed.embeddings and embed.rpm is None
    assert p.api_key is None
    assert p.header_style() == "openai"


def test_from_catalogue_expects_the_key_its_variable_holds(monkeypatch):
    monkeypatch.setenv("SIM_TEST_KEY", "sk-123")
    (p,) = SimConfig.from_catalogue(_catalogue(api_key_env="SIM_TEST_KEY")).providers
    assert p.expected_key() == "sk-123"
    monkeypatch.delenv("SIM_TEST_KEY")
    (p,) = SimConfig.from_catalogue(_catalogue(api_key_env="SIM_TEST_KEY")).providers
    assert p.expected_key() is None


def test_overrides_apply_to_every_provider():
    config = SimConfig.from_catalogue(demo_catalogue("http://sim"), window_s=1, latency_ms=5)
    assert all(p.window_s == 1 and p.latency_ms == 5 for p in config.providers)
    with pytest.raises(ValidationError):
        SimConfig.from_catalogue(_catalogue(), no_such_field=1)


def test_header_style_defaults_by_family():
    styles = {
        p.api: p.header_style()
        for p in SimConfig.from_catalogue(demo_catalogue("http://s")).providers
    }
    assert styles == {
        "openai": "openai",
        "gemini": "none",
        "anthropic": "anthropic",
        "ollama": "none",
    }
    p = SimProvider(name="m", api="openai", models=[{"id": "x"}], headers="mistral")
    assert p.header_style() == "mistral"


def test_sim_base_url_per_family():
    assert sim_base_url("http://h:1/", "a", "openai") == "http://h:1/a/v1"
    assert sim_base_url("http://h:1", "b", "gemini") == "http://h:1/b/v1beta"
    assert sim_base_url("http://h:1", "c", "anthropic") == "http://h:1/c"
    assert sim_base_url("http://h:1", "d", "ollama") == "http://h:1/d"


def test_demo_catalogue_covers_every_family_without_keys():
    catalogue = demo_catalogue("http://127.0.0.1:8900")
    assert {p.api for p in catalogue.providers} == {"openai", "gemini", "anthropic", "ollama"}
    assert 4 <= len(catalogue.providers) <= 6
    for p in catalogue.providers:
        assert p.base_url == sim_base_url("http://127.0.0.1:8900", p.name, p.api)
        assert p.api_key_env is None
        assert p.tier == "free"
        assert 2 <= len(p.models) <= 3
    # An alias shared between providers gives routing a choice.
    holders = [p.name for p in catalogue.providers if p.model("llama-3.1-8b") is not None]
    assert len(holders) >= 2


def test_demo_catalogue_round_trips_through_the_simulator_config():
    config = SimConfig.from_catalogue(demo_catalogue("http://127.0.0.1:8900"))
    assert {p.name for p in config.providers} == {
        p.name for p in demo_catalogue("http://x").providers
    }
    assert all(p.api_key is None for p in config.providers)
