"""What the simulator tests share: the simulated providers (one set per test module, each
test using providers of its own so tests share no limit windows or counters), a fake clock, and
requests in each family's format."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from relay_sim import SimConfig


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def entry(name: str, api: str, **fields: Any) -> dict[str, Any]:
    models = [{"id": "m1", "aliases": ["m1-alias"]}, {"id": "e1", "embeddings": True}]
    return {"name": name, "api": api, "models": models, **fields}


FAMILIES = ["openai", "gemini", "anthropic", "ollama"]

CONFIG = SimConfig.model_validate(
    {
        "seed": 7,
        "providers": [
            entry("oa", "openai", api_key="sk-oa", rpm=1000, tpm=1_000_000),
            entry("oa-rpm", "openai", rpm=2, retry_after_ms=True),
            entry("oa-tpm", "openai", tpm=100),
            entry("mi", "openai", rpm=10, headers="mistral"),
            entry("ge", "gemini", api_key="g-key", rpm=1000),
            entry("ge-rpm", "gemini", rpm=1),
            entry("an", "anthropic", api_key="a-key", rpm=1000, tpm=1_000_000),
            entry("an-rpm", "anthropic", rpm=1),
            entry("ol", "ollama"),
            *(entry(f"f-{family}", family) for family in FAMILIES),
            entry("flap", "openai", flap_s=10),
            entry("slide", "openai", rpm=2),
            entry("persec", "openai", rpm=120, window_s=1),
            entry("stats", "openai", rpm=3),
            entry("conc", "openai", concurrency=2, latency_ms=300),
            entry("busy", "openai", latency_ms=100, jitter_ms=50),
            entry("inflight", "openai", latency_ms=300),
            entry("mixed", "openai", error_rate=0.5),
            # realistic providers (test_realistic.py)
            entry("olt", "openai", latency_median_ms=5, ms_per_output_token=1, chunk_chars=8),
            entry("tpm-reserve", "openai", tpm=100),
            entry("tpm-usage", "openai", tpm=100, tpm_counting="usage"),
            entry("tpm-usage-long", "openai", tpm=100, tpm_counting="usage"),
            entry("hidden", "openai", rpm=600, tpm=60_000, window_s=1),
            entry("c-rpm", "openai", rpm=120, tpm=1_000_000, window_s=1),
            entry("c-tpm", "openai", rpm=600, tpm=1200, window_s=1),
            entry("c-rpd", "openai", rpm=600, rpd=3, window_s=1),
            entry("c-conc", "openai", rpm=60_000, concurrency=2, latency_ms=20, window_s=1),
            entry(
                "c-model",
                "openai",
                rpm=600,
                window_s=1,
                models=[{"id": "m1", "rpm": 60}, {"id": "m2"}],
            ),
        ],
    }
)


# ---- requests in each family's format -------------------------------------------------------


def openai(
    http: httpx.Client, provider: str, text: str, key: str | None = None, **extra: Any
) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    body = {"model": "m1", "messages": [{"role": "user", "content": text}], **extra}
    return http.post(f"/{provider}/v1/chat/completions", json=body, headers=headers)


def gemini(
    http: httpx.Client,
    provider: str,
    text: str,
    key: str | None = None,
    stream: bool = False,
    model: str = "m1",
    **extra: Any,
) -> httpx.Response:
    action = "streamGenerateContent?alt=sse" if stream else "generateContent"
    headers = {"x-goog-api-key": key} if key else {}
    body = {"contents": [{"role": "user", "parts": [{"text": text}]}], **extra}
    return http.post(f"/{provider}/v1beta/models/{model}:{action}", json=body, headers=headers)


def anthropic(
    http: httpx.Client, provider: str, text: str, key: str | None = None, **extra: Any
) -> httpx.Response:
    headers = {"anthropic-version": "2023-06-01"} | ({"x-api-key": key} if key else {})
    body = {"model": "m1", "max_tokens": 100, "messages": [{"role": "user", "content": text}]}
    return http.post(f"/{provider}/v1/messages", json=body | extra, headers=headers)


def ollama(http: httpx.Client, provider: str, text: str, **extra: Any) -> httpx.Response:
    body = {"model": "m1", "messages": [{"role": "user", "content": text}], **extra}
    return http.post(f"/{provider}/api/chat", json=body)


def call(http: httpx.Client, family: str, provider: str, text: str) -> httpx.Response:
    """A non-streaming chat request to ``provider`` in ``family``'s format."""
    if family == "openai":
        return openai(http, provider, text)
    if family == "gemini":
        return gemini(http, provider, text)
    if family == "anthropic":
        return anthropic(http, provider, text)
    return ollama(http, provider, text, stream=False)


def error_kind(family: str, response: httpx.Response) -> str:
    """The family's own name for the error in ``response``."""
    body = response.json()
    if family == "openai":
        return str(body["error"]["type"])
    if family == "gemini":
        return str(body["error"]["status"])
    if family == "anthropic":
        assert body["type"] == "error"
        return str(body["error"]["type"])
    assert isinstance(body["error"], str)
    return "error"


def sse(text: str, sep: str = "\n\n") -> list[tuple[str | None, str]]:
    """(event, data) pairs of an SSE body."""
    events = []
    for block in text.split(sep):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields.get("event"), fields["data"]))
    return events


def stats(http: httpx.Client, provider: str) -> dict[str, Any]:
    data: dict[str, Any] = http.get("/_sim/stats").json()["providers"][provider]
    return data


@contextmanager
def patched(http: httpx.Client, provider: str, **changes: Any) -> Iterator[None]:
    before = http.get(f"/_sim/providers/{provider}").json()
    http.post(f"/_sim/providers/{provider}", json=changes).raise_for_status()
    try:
        yield
    finally:
        restore = {k: before[k] for k in changes}
        http.post(f"/_sim/providers/{provider}", json=restore).raise_for_status()


def wait_until(condition: Any, timeout: float = 5.0) -> bool:
    """Poll ``condition`` (each poll is an HTTP round trip) until true or ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
    return False
