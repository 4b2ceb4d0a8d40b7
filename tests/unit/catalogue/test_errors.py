"""Every kind of catalogue mistake gets one line naming file, line, provider, field and fix."""

from __future__ import annotations

import pytest

from relay_core.catalogue.loader import CatalogueError, load_catalogue
from tests.unit.catalogue.conftest import GROQ, load, only_problem, problems

HEAD = "providers:\n"


def with_groq(**changes: str) -> str:
    """The valid GROQ provider with some lines replaced (``old=new`` pairs by line start)."""
    text = GROQ
    for old, new in changes.items():
        assert old in text, old
        text = text.replace(old, new)
    return HEAD + text


def test_the_valid_snippet_loads() -> None:
    catalogue = load(HEAD + GROQ)
    assert catalogue.providers[0].name == "groq"
    assert catalogue.version == 1


# ---- YAML itself ---------------------------------------------------------------------------


def test_yaml_syntax_error_names_the_line() -> None:
    line = only_problem("providers:\n  - name: groq\n    api: [openai\n")
    assert line.startswith("relay.yaml:4: YAML syntax error: ")
    assert "Fix: check the indentation" in line


def test_yaml_syntax_error_for_a_forbidden_character() -> None:
    line = only_problem("providers:\n  - name: gr\x07oq\n")
    assert line.startswith("relay.yaml:2: YAML syntax error: character 0x7 is not allowed")


def test_empty_file() -> None:
    line = only_problem("# nothing yet\n")
    assert line == (
        "relay.yaml: the file is empty. Fix: add a 'providers:' list (see relay.example.yaml)."
    )


def test_top_level_must_be_a_mapping() -> None:
    line = only_problem("- groq\n- gemini\n")
    assert line.startswith("relay.yaml:1: the file must be a YAML mapping with a 'providers' list")


def test_a_key_written_twice_is_reported_even_though_yaml_accepts_it() -> None:
    line = only_problem(with_groq(**{"limits: {rpm: 30}": "limits:\n      rpm: 30\n      rpm: 60"}))
    assert line == (
        "relay.yaml:8: provider 'groq' → limits.rpm: written twice in the same mapping (first on "
        "line 7); YAML would silently keep only the last. Fix: keep one of them."
    )


# ---- unknown fields --------------------------------------------------------------------------


def test_unknown_field_suggests_the_close_one() -> None:
    line = only_problem(with_groq(**{"limits:": "limitz:"}))
    assert line == (
        "relay.yaml:6: provider 'groq' → limitz: unknown field (did you mean 'limits'?). "
        "Fix: rename it to 'limits'."
    )


def test_unknown_field_in_a_model_limits_mapping() -> None:
    text = with_groq(**{"aliases: [llama-3.1-8b]": "limits: {rmp: 30}"})
    line = only_problem(text)
    assert "provider 'groq' → model 'llama-3.1-8b-instant' → limits.rmp" in line
    assert "did you mean 'rpm'?" in line


def test_unknown_field_without_a_close_match_lists_the_allowed_ones() -> None:
    line = only_problem(with_groq(**{"limits:": "colour: blue\n    limits:"}))
    assert (
        "provider 'groq' → colour: unknown field. Fix: remove it (fields allowed here: api," in line
    )
    assert "base_url" in line and "models" in line


def test_a_key_pasted_into_the_file_is_refused_and_never_echoed() -> None:
    line = only_problem(with_groq(**{"limits:": "api_key: gsk_live_SECRET123\n    limits:"}))
    assert "provider 'groq' → api_key: unknown field (keys never go in the catalogue)" in line
    assert "api_key_env: GROQ_API_KEY" in line
    assert "SECRET123" not in line


def test_a_key_in_api_key_env_is_refused_and_never_echoed() -> None:
    line = only_problem(with_groq(**{"GROQ_API_KEY": "gsk-live-SECRET123"}))
    assert "provider 'groq' → api_key_env: must be the name of an environment variable" in line
    assert "SECRET123" not in line


@pytest.mark.parametrize(
    ("old", "new"),
    [("GROQ_API_KEY", "9876543210"), ("limits:", "headers: {X-Token: 9876543210}\n    limits:")],
)
def test_numbers_in_secret_bearing_fields_are_not_echoed(old: str, new: str) -> None:
    line = only_problem(with_groq(**{old: new}))
    assert "must be text" in line
    assert "9876543210" not in line


def test_credential_headers_are_refused_and_never_echoed() -> None:
    line = only_problem(
        with_groq(**{"limits:": "headers: {Authorization: Bearer SECRET123}\n    limits:"})
    )
    assert "provider 'groq' → headers: header Authorization would put a credential" in line
    assert "SECRET123" not in line


def test_openai_compatibility_flags_load_on_openai_providers() -> None:
    catalogue = load(
        with_groq(**{"limits:": "max_tokens_only: true\n    single_choice: true\n    limits:"})
    )
    groq = catalogue.providers[0]
    assert groq.max_tokens_only and groq.single_choice


@pytest.mark.parametrize("flag", ["max_tokens_only", "single_choice"])
def test_openai_compatibility_flags_are_refused_on_other_families(flag: str) -> None:
    line = only_problem(with_groq(**{"api: openai": f"api: anthropic\n    {flag}: true"}))
    assert f"{flag} applies to api: openai providers only" in line
    assert "Fix: remove it" in line


# ---- duplicates ------------------------------------------------------------------------------


def test_duplicate_provider_names() -> None:
    line = only_problem(HEAD + GROQ + GROQ)
    assert line == (
        "relay.yaml:10: provider 'groq' → name: 'groq' is already the name of the provider at "
        "line 2. Fix: give each provider a unique name (e.g. groq-2)."
    )


def test_every_repeat_of_a_provider_name_is_reported() -> None:
    assert len(problems(HEAD + GROQ + GROQ + GROQ)) == 2


def test_duplicate_model_id_within_a_provider() -> None:
    text = with_groq(**{"        aliases: [llama-3.1-8b]": "      - id: llama-3.1-8b-instant"})
    line = only_problem(text)
    assert line.startswith("relay.yaml:9: provider 'groq' → model 'llama-3.1-8b-instant' → id: ")
    assert "'llama-3.1-8b-instant' is already an id or alias of another model (line 8)" in line
    assert "Fix: give each model id and alias only once within a provider." in line


def test_alias_repeating_another_models_id() -> None:
    text = with_groq(
        **{"[llama-3.1-8b]": "[llama-3.1-8b]\n      - id: big\n        aliases: [llama-3.1-8b]"}
    )
    line = only_problem(text)
    assert "provider 'groq' → model 'big' → aliases[0]: 'llama-3.1-8b' is already" in line


def test_alias_equal_to_its_own_id() -> None:
    line = only_problem(with_groq(**{"[llama-3.1-8b]": "[llama-3.1-8b-instant]"}))
    assert "aliases[0]: 'llama-3.1-8b-instant' is already an id or alias of this model" in line


def test_the_same_alias_on_two_providers_is_pooling_not_an_error() -> None:
    other = GROQ.replace("name: groq", "name: groq-2")
    assert [p.name for p in load(HEAD + GROQ + other).providers] == ["groq", "groq-2"]


# ---- values ----------------------------------------------------------------------------------


def test_non_positive_limit() -> None:
    line = only_problem(with_groq(**{"rpm: 30": "rpm: 0"}))
    assert line == (
        "relay.yaml:6: provider 'groq' → limits.rpm: must be a positive integer (got 0). "
        "Fix: set a value > 0 or remove the field."
    )


@pytest.mark.parametrize("field", ["rpm", "rpd", "tpm", "tpd", "concurrency", "burst"])
def test_every_limit_must_be_positive(field: str) -> None:
    line = only_problem(with_groq(**{"rpm: 30": f"{field}: -5"}))
    assert f"limits.{field}: must be a positive integer (got -5)" in line


def test_non_positive_float_field() -> None:
    line = only_problem(with_groq(**{"limits:": "weight: 0\n    limits:"}))
    assert "provider 'groq' → weight: must be a positive number (got 0)" in line


def test_fractional_limit() -> None:
    line = only_problem(with_groq(**{"rpm: 30": "rpm: 2.5"}))
    assert "limits.rpm: must be a whole number (got 2.5). Fix: drop the fraction." in line


def test_unknown_api_lists_the_known_ones() -> None:
    line = only_problem(with_groq(**{"api: openai": "api: openai-compatible"}))
    assert line == (
        "relay.yaml:3: provider 'groq' → api: unknown value (got 'openai-compatible'); known: "
        "openai, gemini, anthropic, ollama. Fix: use one of openai, gemini, anthropic, ollama "
        "(any OpenAI-compatible endpoint is api: openai)."
    )


def test_close_enum_value_gets_a_suggestion() -> None:
    line = only_problem(with_groq(**{"limits:": "tier: fre\n    limits:"}))
    assert "tier: unknown value (got 'fre'); known: free, paid. Fix: did you mean 'free'?" in line


@pytest.mark.parametrize(
    ("url", "what"),
    [
        ("api.groq.com/openai/v1", "must start with http:// or https://"),
        ("https:///v1", "is not an http(s) URL with a host"),
        ("https://api.groq.com/v1?key=SECRET123", "must not have a query string or fragment"),
        ("https://user:SECRET123@api.groq.com/v1", "must not carry a user name or password"),
        ("https://api.groq.com/${ACCOUNT/v1", "has a '$' that is not a ${NAME} placeholder"),
        ("https://api.groq.com:99999/v1", "has an invalid port"),
        ("'https://api.groq.com/open ai'", "must not contain spaces"),
    ],
)
def test_bad_base_url(url: str, what: str) -> None:
    line = only_problem(with_groq(**{"https://api.groq.com/openai/v1": url}))
    assert line.startswith(f"relay.yaml:4: provider 'groq' → base_url: {what}. Fix: ")
    assert "SECRET123" not in line


def test_base_url_keeps_placeholders_and_loses_its_trailing_slash() -> None:
    url = "https://api.cloudflare.com/client/v4/accounts/${CLOUDFLARE_ACCOUNT_ID}/ai/v1/"
    catalogue = load(with_groq(**{"https://api.groq.com/openai/v1": url}))
    assert catalogue.providers[0].base_url == url.rstrip("/")


@pytest.mark.parametrize("value", ['"25:00 UTC"', '"00:00 CET"', '"midnight"'])
def test_bad_daily_reset(value: str) -> None:
    line = only_problem(with_groq(**{"rpm: 30": f"rpm: 30, daily_reset: {value}"}))
    assert "provider 'groq' → limits.daily_reset: must be \"HH:MM UTC\" or" in line
    assert 'Fix: write it quoted, e.g. daily_reset: "00:00 UTC".' in line


def test_unquoted_daily_reset_that_yaml_reads_as_a_number() -> None:
    line = only_problem(with_groq(**{"rpm: 30": "rpm: 30, daily_reset: 12:30"}))
    assert 'limits.daily_reset: must be text such as "00:00 UTC" (got 750)' in line


def test_unsupported_version() -> None:
    line = only_problem("version: 2\n" + HEAD + GROQ)
    assert line == (
        "relay.yaml:1: version: unsupported catalogue version (got 2); this Relay reads "
        "version 1. Fix: set version: 1, or upgrade Relay."
    )


def test_type_must_be_a_list() -> None:
    line = only_problem(with_groq(**{"aliases: [llama-3.1-8b]": "type: coding"}))
    assert "model 'llama-3.1-8b-instant' → type: must be a list" in line
    assert "type: [text, coding]" in line


# ---- missing fields --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line_start", "field", "example"),
    [
        ("    api: openai\n", "api", "api: openai"),
        ("    base_url: https://api.groq.com/openai/v1\n", "base_url", "base_url: https://"),
    ],
)
def test_missing_required_field(line_start: str, field: str, example: str) -> None:
    line = only_problem(with_groq(**{line_start: ""}))
    assert line.startswith(f"relay.yaml:2: provider 'groq' → {field}: is required but missing.")
    assert f"Fix: add `{example}" in line


def test_missing_name_uses_the_providers_index() -> None:
    line = only_problem(HEAD + GROQ + GROQ.replace("  - name: groq\n    api", "  - api"))
    assert line == (
        "relay.yaml:10: providers[1] → name: is required but missing. Fix: add `name: groq`."
    )


def test_missing_models_and_missing_model_id() -> None:
    no_models = GROQ.split("    models:")[0]
    assert "provider 'groq' → models: is required but missing" in only_problem(HEAD + no_models)
    line = only_problem(with_groq(**{"- id: llama-3.1-8b-instant": "- scale: small"}))
    assert "provider 'groq' → models[0] → id: is required but missing" in line


def test_empty_models_list() -> None:
    line = only_problem(HEAD + GROQ.split("      - id")[0].replace("models:", "models: []"))
    assert "provider 'groq' → models: must list at least one entry" in line


def test_missing_providers() -> None:
    line = only_problem("version: 1\n")
    assert line.startswith("relay.yaml:1: providers: is required but missing. Fix: add `providers:")


def test_a_provider_that_is_not_a_mapping() -> None:
    line = only_problem(HEAD + GROQ + "  - groq\n")
    assert line == (
        "relay.yaml:10: providers[1]: must be a mapping with name, api, base_url and models. "
        "Fix: see relay.example.yaml."
    )


# ---- all problems at once --------------------------------------------------------------------


def test_every_problem_is_listed_in_file_order() -> None:
    second = GROQ.replace("name: groq", "name: gemini").replace("rpm: 30", "rpm: 0")
    text = with_groq(**{"api: openai": "api: opnai", "limits:": "limitz:"}) + second + GROQ
    found = problems(text)
    assert len(found) == 4, found
    assert all(line.startswith("relay.yaml:") and ". Fix: " in line for line in found)
    assert [int(line.split(":")[1]) for line in found] == sorted(
        int(line.split(":")[1]) for line in found
    )
    assert "provider 'groq' → api" in found[0]
    assert "provider 'groq' → limitz" in found[1]
    assert "provider 'gemini' → limits.rpm" in found[2]
    assert "provider 'groq' → name: 'groq' is already the name" in found[3]


# ---- reading the file ------------------------------------------------------------------------


def test_load_catalogue_reads_a_file(tmp_path) -> None:
    path = tmp_path / "relay.yaml"
    path.write_text(HEAD + GROQ.replace("rpm: 30", "rpm: 0"), encoding="utf-8")
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(path)
    assert caught.value.problems[0].startswith(f"{path}:6: provider 'groq' → limits.rpm")
    path.write_text(HEAD + GROQ, encoding="utf-8")
    assert load_catalogue(path).providers[0].name == "groq"


def test_load_catalogue_missing_file(tmp_path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(path)
    assert str(caught.value) == (
        f"{path}: no such file. Fix: check the path (relay.example.yaml is a complete example "
        "to copy)."
    )


def test_load_catalogue_directory_and_binary(tmp_path) -> None:
    with pytest.raises(CatalogueError, match="cannot read"):
        load_catalogue(tmp_path)
    binary = tmp_path / "relay.yaml"
    binary.write_bytes(b"providers: \xff\xfe\n")
    with pytest.raises(CatalogueError, match=r"not UTF-8 text\. Fix: save the file as UTF-8"):
        load_catalogue(binary)
