"""``relay check``: one tiny call per model, a verdict and a reason for each."""

from __future__ import annotations

import asyncio
import json

import httpx
from rich.console import Console

from relay_cli.check import CheckResult, Verdict, check_model, failure_reason, table
from relay_core.catalogue.models import ModelConfig, ProviderConfig
from relay_core.errors import UpstreamAuthError
from relay_core.providers.registry import build_provider
from tests.unit.providers.support import fixture_json

CONFIG = ProviderConfig(
    name="groq",
    api="openai",
    base_url="https://api.groq.com/openai/v1",
    api_key_env="GROQ_API_KEY",
    models=[ModelConfig(id="llama"), ModelConfig(id="embed", embeddings=True, dimensions=16)],
)


async def run_check(respond: httpx.MockTransport, model: ModelConfig, timeout_s: float = 5.0):
    http = httpx.AsyncClient(transport=respond)
    try:
        return await check_model(build_provider(CONFIG, http, "gsk-test-key"), model, timeout_s)
    finally:
        await http.aclose()


async def test_a_working_model_passes_and_asks_for_one_token() -> None:
    sent: list[dict[str, object]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, json=fixture_json("openai", "completion.json"))

    result = await run_check(httpx.MockTransport(answer), CONFIG.models[0])
    assert result.verdict is Verdict.passed
    assert result.latency_ms is not None and result.reason == ""
    assert sent[0]["max_tokens"] == 1 and sent[0]["model"] == "llama"


async def test_a_refused_key_fails_with_the_error_class_and_status() -> None:
    body = fixture_json("openai", "error_invalid_api_key.json")
    transport = httpx.MockTransport(lambda _r: httpx.Response(401, json=body))
    result = await run_check(transport, CONFIG.models[0])
    assert result.verdict is Verdict.failed
    assert result.reason.startswith("UpstreamAuthError (401): ")


async def test_a_model_that_does_not_answer_in_time_fails_as_a_timeout() -> None:
    async def hang(_request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(10)
        return httpx.Response(500)

    result = await run_check(httpx.MockTransport(hang), CONFIG.models[0], timeout_s=0.05)
    assert result.verdict is Verdict.failed
    assert result.reason.startswith("UpstreamTimeout (504")


async def test_embeddings_models_are_skipped_without_a_call() -> None:
    def never(_request: httpx.Request) -> httpx.Response:
        raise AssertionError("no call expected")

    result = await run_check(httpx.MockTransport(never), CONFIG.models[1])
    assert result.verdict is Verdict.skipped


def test_failure_reason_prefers_the_upstream_status() -> None:
    exc = UpstreamAuthError("Invalid API Key\nmore", provider="groq", upstream_status=403)
    assert failure_reason(exc) == "UpstreamAuthError (403): Invalid API Key"
    assert failure_reason(ValueError("odd")) == "ValueError: odd"


def test_table_shows_every_verdict() -> None:
    rows = [
        CheckResult("groq", "llama", Verdict.passed, "", 12.3),
        CheckResult("groq", "big", Verdict.failed, "RateLimited (429): slow down"),
        CheckResult(
            "gemini", "flash", Verdict.skipped, "provider disabled: GEMINI_API_KEY is not set"
        ),
    ]
    console = Console(record=True, width=160)
    console.print(table(rows))
    text = console.export_text()
    for expected in ("PASS", "FAIL", "SKIP", "RateLimited (429)", "GEMINI_API_KEY is not set"):
        assert expected in text
