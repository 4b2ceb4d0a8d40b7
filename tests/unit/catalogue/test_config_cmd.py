"""``relay config check``: the table on stdout, problems on stderr, exit 0/1, never a key."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay_cli.main import main
from tests.unit.catalogue.conftest import GROQ

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "relay.example.yaml"
SECRET = "sk-test-DO-NOT-PRINT-4242"


@pytest.fixture
def env(clean_env: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    clean_env.setenv("COLUMNS", "200")  # rich wraps to the terminal width; keep lines whole
    return clean_env


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["config", "check", *args])
    out, err = capsys.readouterr()
    return code, out, err


def table_rows(out: str) -> dict[str, list[str]]:
    """The table's one-line rows as cells, by provider name."""
    rows = [line.split("│")[1:-1] for line in out.splitlines() if line.count("│") > 2]
    return {cells[0].strip(): [c.strip() for c in cells] for cells in rows}


def test_valid_file_prints_the_table_and_exits_0(env, capsys) -> None:
    env.setenv("GROQ_API_KEY", SECRET)
    code, out, err = run([str(EXAMPLE)], capsys)
    assert code == 0, err
    assert err == ""
    for header in ("provider", "api", "tier", "models", "limits", "key", "enabled"):
        assert header in out
    rows = table_rows(out)
    assert set(rows) >= {"groq", "gemini", "ollama", "anthropic"}
    assert rows["groq"] == ["groq", "openai", "free", "5", "per model (-v)", "yes", "yes"]
    assert rows["gemini"][-2:] == ["no", "no"]
    assert rows["ollama"][-2:] == ["not needed", "yes"]
    assert rows["openrouter"][4] == "rpm 20 · rpd 50"
    assert "gemini: disabled — GEMINI_API_KEY is not set" in out
    assert "anthropic: disabled — paid tier, and RELAY_MODE is free" in out
    assert "valid: 12 providers, 2 enabled" in out


def test_no_key_value_is_ever_printed(env, capsys) -> None:
    for name in ("GROQ_API_KEY", "OPENAI_API_KEY", "CLOUDFLARE_API_TOKEN", "CLOUDFLARE_ACCOUNT_ID"):
        env.setenv(name, SECRET)
    code, out, err = run([str(EXAMPLE), "--verbose", "--mode", "paid"], capsys)
    assert code == 0
    assert SECRET not in out + err
    assert "DO-NOT-PRINT" not in out + err


def test_mode_option_enables_paid_providers(env, capsys) -> None:
    env.setenv("OPENAI_API_KEY", SECRET)
    code, out, _ = run([str(EXAMPLE), "--mode", "paid"], capsys)
    assert code == 0
    assert "openai: disabled" not in out
    assert "(mode: paid)" in out


def test_verbose_lists_model_ids_and_per_model_limits(env, capsys) -> None:
    code, out, _ = run([str(EXAMPLE), "-v"], capsys)
    assert code == 0
    assert "llama-3.3-70b-versatile" in out
    assert "llama-3.1-8b-instant: rpm 30 · rpd 14,400 · tpm 6,000 · tpd 500,000" in out


def test_invalid_file_exits_1_with_every_problem_on_stderr(env, capsys, tmp_path) -> None:
    env.setenv("GROQ_API_KEY", SECRET)
    bad = tmp_path / "relay.yaml"
    bad.write_text(
        "providers:\n" + GROQ.replace("rpm: 30", "rpm: 0").replace("api: openai", "api: x")
    )
    code, out, err = run([str(bad)], capsys)
    assert code == 1
    assert out == ""
    lines = err.splitlines()
    assert lines[0].startswith(f"{bad}:3: provider 'groq' → api: unknown value")
    assert lines[1].startswith(f"{bad}:6: provider 'groq' → limits.rpm: must be a positive integer")
    assert lines[2] == "2 problems: the catalogue is invalid."
    assert SECRET not in err


def test_missing_file_exits_1(env, capsys, tmp_path) -> None:
    code, out, err = run([str(tmp_path / "nope.yaml")], capsys)
    assert code == 1
    assert out == ""
    assert "nope.yaml: no such file." in err
    assert err.endswith("1 problem: the catalogue is invalid.\n")


def test_without_a_file_checks_what_resolve_catalogue_picks(env, capsys, tmp_path) -> None:
    chosen = tmp_path / "mine.yaml"
    chosen.write_text("providers:\n" + GROQ)
    env.setenv("RELAY_CONFIG", str(chosen))
    code, out, _ = run([], capsys)
    assert code == 0
    assert f"Catalogue: {chosen} (from RELAY_CONFIG)" in out
    assert "groq: disabled — GROQ_API_KEY is not set" in out
    assert "valid: 1 provider, 0 enabled — none can serve requests here" in out


def test_invalid_settings_exit_1(env, capsys) -> None:
    env.setenv("RELAY_MODE", "cheap")
    code, _, err = run([str(EXAMPLE)], capsys)
    assert code == 1
    assert err.startswith("RELAY_MODE: ")
