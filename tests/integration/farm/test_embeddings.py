"""``POST /v1/embeddings`` on a real farm: every family's embeddings endpoint through the
simulator, the right vector for each input, failover to a model of the same dimension when a
provider is down, and never to another dimension."""

from __future__ import annotations

from typing import Any

import pytest

from relay_core.schemas.embeddings import decode_vector
from relay_sim.vectors import vector
from tests.support.farm import FarmFactory, model, sim_provider

pytestmark = pytest.mark.integration


def embedder(mid: str, dimensions: int, **extra: Any) -> dict[str, Any]:
    return model(mid, embeddings=True, dimensions=dimensions, type=["embedding"], **extra)


def embedding_providers(sim_url: str) -> list[dict[str, Any]]:
    """One embeddings model per family (the same alias ``vec`` at 32 dimensions), a model of
    another dimension, and a chat model."""
    return [
        sim_provider("e-openai", "openai", sim_url, [embedder("oa-embed", 32, aliases=["vec"])]),
        sim_provider("e-gemini", "gemini", sim_url, [embedder("ge-embed", 32, shortens=True)]),
        sim_provider("e-ollama", "ollama", sim_url, [embedder("ol-embed", 32)]),
        sim_provider("e-wide", "openai", sim_url, [embedder("wide-embed", 64)]),
        sim_provider("e-chat", "openai", sim_url, [model("chatty")]),
    ]


@pytest.fixture
def farm(make_farm: FarmFactory) -> Any:
    return make_farm(embedding_providers, embeddings_failover="same_dimension")


@pytest.mark.parametrize(
    ("name", "provider"),
    [
        ("e-openai/oa-embed", "e-openai"),
        ("e-gemini/ge-embed", "e-gemini"),
        ("e-ollama/ol-embed", "e-ollama"),
    ],
)
def test_each_family_answers_each_input_its_own_vector(farm: Any, name: str, provider: str):
    texts = ["the first text", "a second one", "the first text"]
    with farm.client() as c:
        r = c.post("/v1/embeddings", json={"model": name, "input": texts})
        one = c.post("/v1/embeddings", json={"model": name, "input": "alone"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert r.headers["x-relay-provider"] == provider
    assert body["object"] == "list"
    assert [d["index"] for d in body["data"]] == [0, 1, 2]
    assert [d["embedding"] for d in body["data"]] == [vector(t, 32) for t in texts]
    assert body["usage"]["prompt_tokens"] > 0
    assert one.status_code == 200, one.text
    assert one.json()["data"][0]["embedding"] == vector("alone", 32)


def test_base64_and_shortened_vectors(farm: Any):
    with farm.client() as c:
        b64 = c.post(
            "/v1/embeddings",
            json={"model": "e-openai/oa-embed", "input": ["x y z"], "encoding_format": "base64"},
        )
        short = c.post(
            "/v1/embeddings",
            json={"model": "e-gemini/ge-embed", "input": ["x y z"], "dimensions": 8},
        )
    assert b64.status_code == 200, b64.text
    got = decode_vector(b64.json()["data"][0]["embedding"])
    assert got == pytest.approx(vector("x y z", 32), abs=1e-6)
    assert short.status_code == 200, short.text
    assert short.json()["data"][0]["embedding"] == vector("x y z", 32, keep=8)


def test_failover_to_a_model_of_the_same_dimension_never_another(farm: Any):
    farm.sim("e-openai", outage=True)
    with farm.client() as c:
        r = c.post("/v1/embeddings", json={"model": "vec", "input": ["fail me over"]})
    assert r.status_code == 200, r.text
    assert r.headers["x-relay-provider"] in {"e-gemini", "e-ollama"}
    assert len(r.json()["data"][0]["embedding"]) == 32
    assert r.json()["data"][0]["embedding"] == vector("fail me over", 32)
    for p in ("e-gemini", "e-ollama"):
        farm.sim(p, outage=True)
    with farm.client() as c:
        down = c.post("/v1/embeddings", json={"model": "vec", "input": ["nowhere to go"]})
    assert down.status_code == 503, down.text  # the 64-dimension model is never tried
    stats = farm.sim_stats()
    assert stats["providers"]["e-wide"]["requests"] == 0


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": "nope", "input": "x"}, 404, "model"),
        ({"model": "chatty", "input": "x"}, 400, "model"),
        ({"model": "vec", "input": ""}, 400, "input"),
        ({"model": "vec", "input": []}, 400, "input"),
        ({"model": "vec", "input": ["a", ""]}, 400, "input[1]"),
        ({"model": "vec", "input": ["a"] * 3000}, 400, "input"),
        ({"model": "vec", "input": "x", "dimensions": 48}, 400, "dimensions"),
    ],
)
def test_clear_errors(farm: Any, body: dict[str, Any], status: int, param: str):
    with farm.client() as c:
        r = c.post("/v1/embeddings", json=body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["param"] == param
    assert error["message"]
