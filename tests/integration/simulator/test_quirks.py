"""The simulator's upstream quirks (off by default): a denser tokenizer, a context window
that answers OpenAI's ``context_length_exceeded``, and streams without usage."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import orjson
import pytest

from relay_sim import SimConfig, SimServer

CONFIG = SimConfig.model_validate(
    {
        "providers": [
            {"name": "plain", "api": "openai", "models": [{"id": "m"}]},
            {
                "name": "quirky",
                "api": "openai",
                "token_density": 3.0,
                "stream_usage": False,
                "models": [{"id": "m", "context_window": 100}],
            },
        ]
    }
)


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with SimServer(CONFIG) as sim, httpx.Client(base_url=sim.url, timeout=5) as client:
        yield client


def _chat(http: httpx.Client, provider: str, text: str, **extra: object) -> httpx.Response:
    body = {"model": "m", "messages": [{"role": "user", "content": text}], **extra}
    return http.post(f"/{provider}/v1/chat/completions", json=body)


def test_a_denser_tokenizer_counts_more_prompt_tokens(http: httpx.Client) -> None:
    text = "x" * 40
    plain = _chat(http, "plain", text).json()["usage"]["prompt_tokens"]
    dense = _chat(http, "quirky", text).json()["usage"]["prompt_tokens"]
    assert (plain, dense) == (10, 30)


def test_a_prompt_over_the_window_gets_context_length_exceeded(http: httpx.Client) -> None:
    r = _chat(http, "quirky", "y" * 200)  # 150 tokens as this provider counts
    assert r.status_code == 400
    error = r.json()["error"]
    assert (error["code"], error["param"]) == ("context_length_exceeded", "messages")
    assert "maximum context length is 100 tokens" in error["message"]
    assert "resulted in 150 tokens" in error["message"]
    assert _chat(http, "plain", "y" * 200).status_code == 200  # off by default


def test_stream_usage_can_be_left_out(http: httpx.Client) -> None:
    options = {"stream": True, "stream_options": {"include_usage": True}}

    def usages(provider: str) -> list[object]:
        r = _chat(http, provider, "hi", **options)
        events = [line[6:] for line in r.text.splitlines() if line.startswith("data: {")]
        return [orjson.loads(e).get("usage") for e in events if orjson.loads(e).get("usage")]

    assert usages("plain")
    assert usages("quirky") == []
