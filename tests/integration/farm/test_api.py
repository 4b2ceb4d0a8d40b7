"""The API's contract: validation, auth, models, health, and real OpenAI clients unchanged."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.farm import FarmFactory

pytestmark = pytest.mark.integration


def queued(farm: Any) -> int:
    """Messages waiting on every provider queue of this farm."""
    return sum(
        int(farm.redis.llen(k))
        for k in farm.redis.scan_iter(match=f"{farm.settings.key_prefix}.*")
        if farm.redis.type(k) == b"list"
    )


def assert_openai_error(r: Any, status: int, param: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err: dict[str, Any] = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["message"]
    if param is not None:
        assert err["param"] == param
    return err


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        (b"{not json", 400, None),
        ({"model": "meta-model"}, 400, "messages"),
        ({"model": "meta-model", "messages": []}, 400, "messages"),
        ({"messages": [{"role": "user", "content": "x"}]}, 400, "model"),
        (
            {"model": "meta-model", "messages": [{"role": "wizard", "content": "x"}]},
            400,
            "messages.0.role",
        ),
        (
            {
                "model": "meta-model",
                "messages": [{"role": "user", "content": "x"}],
                "temperature": "hot",
            },
            400,
            "temperature",
        ),
        (
            {
                "model": "meta-model",
                "messages": [{"role": "user", "content": "x"}],
                "max_tokens": 0,
            },
            400,
            "max_tokens",
        ),
        ({"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]}, 404, "model"),
        (
            {
                "model": "meta-model",
                "messages": [{"role": "user", "content": "x"}],
                "model_type": "telepathy",
            },
            400,
            "model_type",
        ),
        (
            {
                "model": "meta-model",
                "messages": [{"role": "user", "content": "x"}],
                "model_scale": "huge",
            },
            400,
            "model_scale",
        ),
    ],
    ids=[
        "malformed-json",
        "no-messages",
        "empty-messages",
        "no-model",
        "bad-role",
        "mistyped-temperature",
        "zero-max-tokens",
        "unknown-model",
        "type-matches-nothing",
        "bad-scale",
    ],
)
def test_invalid_requests_get_an_openai_error_and_enqueue_nothing(
    make_farm: FarmFactory, body: Any, status: int, param: str | None
) -> None:
    farm = make_farm(workers=0)  # nobody consumes: anything enqueued would stay visible
    with farm.client() as http:
        if isinstance(body, bytes):
            r = http.post(
                "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
            )
        else:
            r = http.post("/v1/chat/completions", json=body)
    err = assert_openai_error(r, status, param)
    assert err["type"] == "invalid_request_error"
    assert queued(farm) == 0
    assert farm.sim_stats()["totals"]["requests"] == 0


def test_gateway_keys_are_required_when_configured(make_farm: FarmFactory) -> None:
    from pydantic import SecretStr

    farm = make_farm(api_keys=[SecretStr("sk-team-a-123456")])
    ask = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
    with farm.client() as http:
        missing = http.post("/v1/chat/completions", json=ask)
        wrong = http.post(
            "/v1/chat/completions", json=ask, headers={"Authorization": "Bearer sk-wrong-999999"}
        )
        right = http.post(
            "/v1/chat/completions", json=ask, headers={"Authorization": "Bearer sk-team-a-123456"}
        )
        models = http.get("/v1/models")
    assert assert_openai_error(missing, 401)["type"] == "authentication_error"
    assert assert_openai_error(wrong, 401)["code"] == "invalid_api_key"
    assert "sk-wrong-999999" not in wrong.text
    assert right.status_code == 200
    assert models.status_code == 401


def test_models_lists_every_target_with_live_status_and_filters(make_farm: FarmFactory) -> None:
    farm = make_farm()
    with farm.client() as http:
        everything = http.get("/v1/models").json()
        gemini = http.get("/v1/models", params={"provider": "p-gemini"}).json()
        one = http.get("/v1/models/p-claude/p-claude-m")
        missing = http.get("/v1/models/nope")
    ids = [m["id"] for m in everything["data"]]
    assert everything["object"] == "list"
    assert ids[0] == "meta-model"
    assert set(ids[1:]) == {
        "p-openai/p-openai-m",
        "p-gemini/p-gemini-m",
        "p-claude/p-claude-m",
        "p-ollama/p-ollama-m",
    }
    entry = next(m for m in everything["data"] if m["id"] == "p-openai/p-openai-m")
    assert entry["provider"] == "p-openai" and entry["aliases"] == ["chat"]
    assert entry["status"]["breaker"] == "closed"
    assert [m["id"] for m in gemini["data"]] == ["p-gemini/p-gemini-m"]
    assert one.json()["root"] == "p-claude-m"
    assert_openai_error(missing, 404, "model")


def test_health_and_ready(make_farm: FarmFactory) -> None:
    farm = make_farm()
    with farm.client() as http:
        assert http.get("/health").json() == {"status": "ok", "redis": "ok"}
        ready = http.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["providers_served"] == ["p-claude", "p-gemini", "p-ollama", "p-openai"]


def test_ready_is_503_without_a_worker(make_farm: FarmFactory) -> None:
    farm = make_farm(workers=0)
    with farm.client() as http:
        ready = http.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["status"] == "not_ready"


def test_the_official_openai_sdk_works_unchanged(make_farm: FarmFactory) -> None:
    import openai

    farm = make_farm()
    client = openai.OpenAI(base_url=f"{farm.url}/v1", api_key="unused", max_retries=0)
    reply = client.chat.completions.create(
        model="meta-model", messages=[{"role": "user", "content": "from the SDK"}]
    )
    assert reply.choices[0].message.content is not None
    assert reply.choices[0].message.content.endswith(": from the SDK")
    assert reply.usage is not None and reply.usage.total_tokens > 0
    models = client.models.list()
    assert "meta-model" in [m.id for m in models.data]
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert info.value.code == "model_not_found"


def test_the_sdk_sees_a_429_with_retry_after(make_farm: FarmFactory) -> None:
    import openai

    from tests.integration.farm.test_failover import two_providers

    farm = make_farm(lambda url: two_providers(url, rpd=1))
    client = openai.OpenAI(base_url=f"{farm.url}/v1", api_key="unused", max_retries=0)
    for _ in range(2):
        client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}])
    assert int(info.value.response.headers["retry-after"]) >= 1


def test_langchain_chat_openai_works_unchanged(make_farm: FarmFactory) -> None:
    from langchain_openai import ChatOpenAI

    farm = make_farm()
    llm = ChatOpenAI(base_url=f"{farm.url}/v1", api_key="unused", model="chat", max_retries=0)
    answer = llm.invoke("from LangChain")
    assert isinstance(answer.content, str) and answer.content.endswith(": from LangChain")
    assert answer.response_metadata["model_name"].endswith("-m")
