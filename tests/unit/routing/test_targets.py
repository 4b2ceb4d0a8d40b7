"""``resolve_targets``: which (provider, model) pairs may serve a request."""

from __future__ import annotations

import pytest

from relay_core.catalogue.demo import demo_catalogue
from relay_core.errors import InvalidRequest, ModelNotFound, RelayError
from relay_core.routing.targets import Selection, resolve_targets
from relay_core.settings import Mode
from tests.unit.routing.support import catalogue, keys

META = "meta-model"
FREE = [
    "groq/llama-3.1-8b",
    "groq/qwen-coder-32b",
    "groq/openai/gpt-oss-20b",
    "gemini/gemini-flash",
    "ollama/llama3.1:8b",
    "spare/llama-3.1-8b",
]


def resolve(model: str, mode: Mode = Mode.free, meta: str = META, **filters: str) -> list[str]:
    fallback = bool(filters.pop("fallback_any", ""))
    sel = Selection(
        model,
        filters.get("model_type"),
        filters.get("model_scale"),
        filters.get("model_name"),
        fallback_any=fallback,
    )
    return keys(resolve_targets(catalogue(), sel, mode=mode, meta_model=meta))


def refusal(model: str, mode: Mode = Mode.free, meta: str = META, **filters: str) -> RelayError:
    with pytest.raises(RelayError) as caught:
        resolve(model, mode, meta, **filters)
    return caught.value


# ---- the meta-model -------------------------------------------------------------------------


@pytest.mark.parametrize("name", [META, "auto"])
def test_the_meta_model_is_every_free_model_in_free_mode(name: str) -> None:
    assert resolve(name) == FREE


@pytest.mark.parametrize("mode", [Mode.auto, Mode.paid])
def test_paid_models_take_part_in_auto_and_paid_modes(mode: Mode) -> None:
    assert resolve(META, mode) == [*FREE, "openai/gpt-4o"]


def test_the_meta_model_name_comes_from_the_settings() -> None:
    assert resolve("everything", meta="everything") == FREE
    assert resolve("auto", meta="everything") == FREE  # "auto" always means the meta-model
    assert isinstance(refusal(META, meta="everything"), ModelNotFound)  # now it is no model


# ---- ids and aliases ------------------------------------------------------------------------


def test_an_alias_shared_across_providers_is_every_provider_serving_it() -> None:
    assert resolve("small-fast") == ["groq/llama-3.1-8b", "gemini/gemini-flash"]
    assert resolve("llama") == ["groq/llama-3.1-8b", "ollama/llama3.1:8b", "spare/llama-3.1-8b"]


def test_a_model_id_is_every_provider_serving_that_id() -> None:
    assert resolve("llama-3.1-8b") == ["groq/llama-3.1-8b", "spare/llama-3.1-8b"]


def test_an_id_with_a_slash_that_names_no_provider_is_an_id() -> None:
    assert resolve("openai/gpt-oss-20b") == ["groq/openai/gpt-oss-20b"]


def test_an_alias_served_by_a_paid_provider_too() -> None:
    assert resolve("smart") == ["gemini/gemini-flash"]
    assert resolve("smart", Mode.auto) == ["gemini/gemini-flash", "openai/gpt-4o"]


def test_a_model_only_a_paid_provider_serves_is_not_found_in_free_mode() -> None:
    err = refusal("gpt-4o")
    assert isinstance(err, ModelNotFound)
    assert (err.status_code, err.param) == (404, "model")
    assert resolve("gpt-4o", Mode.paid) == ["openai/gpt-4o"]


def test_an_unknown_model_is_a_404_naming_the_model_and_the_meta_model() -> None:
    err = refusal("gpt-9")
    assert isinstance(err, ModelNotFound)
    assert (err.status_code, err.param) == (404, "model")
    assert "'gpt-9'" in err.message and f"'{META}'" in err.message


# ---- provider/model pinning -----------------------------------------------------------------


def test_pinning_is_that_one_target() -> None:
    assert resolve("groq/qwen-coder-32b") == ["groq/qwen-coder-32b"]
    assert resolve("groq/coder") == ["groq/qwen-coder-32b"]  # an alias of that provider
    assert resolve("groq/openai/gpt-oss-20b") == ["groq/openai/gpt-oss-20b"]


def test_pinning_with_fallback_puts_the_pin_first_then_everything_else() -> None:
    pinned = "ollama/llama3.1:8b"
    assert resolve(pinned, fallback_any="yes") == [pinned, *(k for k in FREE if k != pinned)]


def test_the_fallback_is_narrowed_by_the_filters_but_the_pin_is_not() -> None:
    got = resolve("ollama/llama3.1:8b", fallback_any="yes", model_type="vision")
    assert got == ["ollama/llama3.1:8b", "gemini/gemini-flash"]


def test_pinning_a_paid_model_in_free_mode_is_a_400() -> None:
    err = refusal("openai/gpt-4o")
    assert isinstance(err, InvalidRequest)
    assert (err.status_code, err.param) == (400, "model")
    assert "RELAY_MODE" in err.message
    assert resolve("openai/gpt-4o", Mode.auto) == ["openai/gpt-4o"]


@pytest.mark.parametrize("model", ["nobody/llama-3.1-8b", "groq/gemini-flash"])
def test_pinning_what_does_not_exist_is_a_404(model: str) -> None:
    err = refusal(model)
    assert isinstance(err, ModelNotFound)
    assert err.param == "model"


# ---- the three filters ----------------------------------------------------------------------


def test_model_type_keeps_the_models_of_that_type() -> None:
    assert resolve(META, model_type="coding") == ["groq/qwen-coder-32b"]
    assert resolve(META, Mode.paid, model_type="coding") == [
        "groq/qwen-coder-32b",
        "openai/gpt-4o",
    ]


def test_model_scale_keeps_the_models_of_that_scale() -> None:
    assert resolve(META, model_scale="medium") == [
        "groq/openai/gpt-oss-20b",
        "gemini/gemini-flash",
    ]


def test_model_name_is_a_case_insensitive_substring_of_the_id() -> None:
    assert resolve(META, model_name="LLAMA") == [
        "groq/llama-3.1-8b",
        "ollama/llama3.1:8b",
        "spare/llama-3.1-8b",
    ]


def test_filters_combine_and_narrow_an_alias_too() -> None:
    assert resolve(META, model_type="text", model_scale="small", model_name="3.1:") == [
        "ollama/llama3.1:8b"
    ]
    assert resolve("small-fast", model_type="vision") == ["gemini/gemini-flash"]


@pytest.mark.parametrize(
    ("filters", "param"),
    [
        ({"model_type": "telepathy"}, "model_type"),
        ({"model_scale": "large", "model_name": "flash"}, "model_name"),
        ({"model_type": "text", "model_scale": "large", "model_name": "llama"}, "model_name"),
        ({"model_type": "vision", "model_scale": "small"}, "model_scale"),
    ],
)
def test_a_filter_that_leaves_nothing_is_a_400_naming_it(
    filters: dict[str, str], param: str
) -> None:
    err = refusal(META, Mode.free, META, **filters)
    assert isinstance(err, InvalidRequest)
    assert (err.status_code, err.param) == (400, param)
    for name, value in filters.items():
        assert f"{name}={value!r}" in err.message


def test_a_filter_that_empties_an_alias_names_it() -> None:
    err = refusal("small-fast", model_scale="large")
    assert isinstance(err, InvalidRequest)
    assert err.param == "model_scale"
    assert "'small-fast'" in err.message


# ---- the demo catalogue speaks the same vocabulary as the example one ------------------------


def test_the_demo_catalogue_tags_coding_models_coding() -> None:
    providers = demo_catalogue("http://127.0.0.1:8900").providers
    assert all("code" not in m.type for p in providers for m in p.models)
    sel = Selection(META, model_type="coding")
    coding = keys(resolve_targets(providers, sel, mode=Mode.free, meta_model=META))
    assert "sim-mistral/codestral-latest" in coding
    assert "sim-ollama/qwen2.5-coder:7b" in coding


def test_embedding_only_models_never_serve_chat() -> None:
    from relay_core.catalogue.demo import demo_catalogue
    from relay_core.routing.targets import Selection, resolve_targets
    from relay_core.settings import Mode

    providers = demo_catalogue("http://sim").providers
    assert any(m.type == ["embedding"] for p in providers for m in p.models)
    chosen = resolve_targets(
        providers, Selection("meta-model"), mode=Mode.free, meta_model="meta-model"
    )
    assert chosen and all("embedding" not in t.model.type for t in chosen)
