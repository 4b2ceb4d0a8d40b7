"""POST /v1/chat/completions through real Redis, real Celery workers and the simulator."""

from __future__ import annotations

import pytest

from tests.integration.farm.conftest import four_providers
from tests.support.farm import FarmFactory

pytestmark = pytest.mark.integration


def ask(text: str, model: str = "meta-model", **extra: object) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def test_answer_is_openai_shaped_and_says_who_served_it(make_farm: FarmFactory) -> None:
    farm = make_farm()
    with farm.client() as http:
        r = http.post("/v1/chat/completions", json=ask("hello there"))
    assert r.status_code == 200, r.text
    body = r.json()
    provider, model = r.headers["x-relay-provider"], r.headers["x-relay-model"]
    assert body["object"] == "chat.completion"
    assert body["model"] == model == f"{provider}-m"
    assert body["choices"][0]["message"] == {
        "role": "assistant",
        "content": f"sim:{provider}/{model}: hello there",
        "refusal": None,  # as OpenAI sends it
    }
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["choices"][0]["logprobs"] is None
    assert body["usage"]["total_tokens"] == (
        body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    )
    assert r.headers["x-relay-attempts"] == "1"


@pytest.mark.parametrize("name", ["p-openai", "p-gemini", "p-claude", "p-ollama"])
def test_each_family_serves_through_the_farm(make_farm: FarmFactory, name: str) -> None:
    farm = make_farm()
    with farm.client() as http:
        r = http.post("/v1/chat/completions", json=ask("family check", f"{name}/{name}-m"))
    assert r.status_code == 200, r.text
    assert r.headers["x-relay-provider"] == name
    assert r.json()["choices"][0]["message"]["content"] == f"sim:{name}/{name}-m: family check"


def test_each_request_gets_its_own_answer_under_concurrency(make_farm: FarmFactory) -> None:
    import concurrent.futures as cf

    farm = make_farm(concurrency=32)

    def one(i: int) -> tuple[int, str]:
        with farm.client() as http:
            r = http.post("/v1/chat/completions", json=ask(f"question {i}", "chat"))
        assert r.status_code == 200, r.text
        return i, r.json()["choices"][0]["message"]["content"]

    with cf.ThreadPoolExecutor(32) as pool:
        results = list(pool.map(one, range(64)))
    for i, content in results:
        assert content.endswith(f": question {i}")


def test_pinned_model_does_not_fail_over_unless_asked(make_farm: FarmFactory) -> None:
    farm = make_farm()
    farm.sim("p-openai", outage=True)
    with farm.client() as http:
        pinned = http.post("/v1/chat/completions", json=ask("x", "p-openai/p-openai-m"))
        fallback = http.post(
            "/v1/chat/completions",
            json=ask("x", "p-openai/p-openai-m"),
            headers={"X-Relay-Fallback": "any"},
        )
    assert pinned.status_code == 503
    assert pinned.json()["error"]["code"] == "upstream_unavailable"
    assert "p-openai" in pinned.json()["error"]["message"]
    assert fallback.status_code == 200
    assert fallback.headers["x-relay-provider"] != "p-openai"
    assert fallback.headers["x-relay-attempts"] == "2"


def test_a_pinned_model_with_fallback_stays_first_while_it_can_serve(
    make_farm: FarmFactory,
) -> None:
    """Fallback is for when the named target cannot serve, not for spreading load: its
    shrinking headroom must not rank the others ahead of it (issue 14, item 6)."""
    farm = make_farm(lambda url: four_providers(url, rpm=100))
    with farm.client() as http:
        served = [
            http.post(
                "/v1/chat/completions",
                json=ask(f"q{i}", "p-openai/p-openai-m"),
                headers={"X-Relay-Fallback": "any"},
            ).headers["x-relay-provider"]
            for i in range(12)
        ]
    assert served == ["p-openai"] * 12
