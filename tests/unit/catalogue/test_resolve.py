"""resolve_catalogue: RELAY_CONFIG, else ./relay.yaml, else the built-in demo catalogue."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay_core.catalogue.loader import CatalogueError, resolve_catalogue
from relay_core.catalogue.source import CatalogueOrigin
from relay_core.settings import Settings
from tests.unit.catalogue.conftest import GROQ


@pytest.fixture
def in_tmp(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> Path:
    clean_env.chdir(tmp_path)
    return tmp_path


def test_relay_config_wins_over_the_working_directory(in_tmp: Path, clean_env) -> None:
    (in_tmp / "relay.yaml").write_text("providers:\n" + GROQ.replace("groq", "local"))
    chosen = in_tmp / "elsewhere.yaml"
    chosen.write_text("providers:\n" + GROQ)
    clean_env.setenv("RELAY_CONFIG", str(chosen))
    catalogue, source = resolve_catalogue(Settings())
    assert [p.name for p in catalogue.providers] == ["groq"]
    assert source.origin is CatalogueOrigin.env
    assert source.path == chosen
    assert str(source) == f"{chosen} (from RELAY_CONFIG)"


def test_relay_config_naming_a_missing_file_is_an_error(in_tmp: Path, clean_env) -> None:
    (in_tmp / "relay.yaml").write_text("providers:\n" + GROQ)  # must not be used instead
    clean_env.setenv("RELAY_CONFIG", str(in_tmp / "typo.yaml"))
    with pytest.raises(CatalogueError) as caught:
        resolve_catalogue(Settings())
    assert caught.value.problems == (
        f"{in_tmp / 'typo.yaml'}: RELAY_CONFIG names a file that does not exist. Fix: correct "
        "RELAY_CONFIG, or unset it to use ./relay.yaml or the demo catalogue.",
    )


def test_an_invalid_relay_config_file_raises_its_problems(in_tmp: Path, clean_env) -> None:
    path = in_tmp / "bad.yaml"
    path.write_text("providers:\n" + GROQ.replace("rpm: 30", "rpm: 0"))
    clean_env.setenv("RELAY_CONFIG", str(path))
    with pytest.raises(CatalogueError, match=r"limits\.rpm: must be a positive integer"):
        resolve_catalogue(Settings())


def test_relay_yaml_in_the_working_directory(in_tmp: Path) -> None:
    (in_tmp / "relay.yaml").write_text("providers:\n" + GROQ)
    catalogue, source = resolve_catalogue(Settings())
    assert [p.name for p in catalogue.providers] == ["groq"]
    assert source.origin is CatalogueOrigin.cwd
    assert source.path == Path("relay.yaml")


def test_nothing_configured_gives_the_demo_catalogue(in_tmp: Path, clean_env) -> None:
    clean_env.setenv("RELAY_SIM_URL", "http://127.0.0.1:9999")
    catalogue, source = resolve_catalogue(Settings())
    assert source.origin is CatalogueOrigin.demo
    assert source.is_demo
    assert source.path is None
    assert catalogue.providers
    assert all(p.base_url.startswith("http://127.0.0.1:9999") for p in catalogue.providers)
    assert all(p.api_key_env is None for p in catalogue.providers)


def test_relay_demo_wins_over_files(in_tmp: Path, clean_env) -> None:
    (in_tmp / "relay.yaml").write_text("providers:\n" + GROQ)
    clean_env.setenv("RELAY_CONFIG", str(in_tmp / "relay.yaml"))
    clean_env.setenv("RELAY_DEMO", "true")
    catalogue, source = resolve_catalogue(Settings())
    assert source.is_demo
    assert "groq" not in [p.name for p in catalogue.providers]
