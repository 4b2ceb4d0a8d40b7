"""Every error is OpenAI's error object, and the bad requests fuzzing found stay 4xx, fast.

Regressions of what schemathesis found: an integer beyond 64 bits, or JSON nested past
orjson's limit, made the API answer 500 (the envelope could not be encoded); a message or
field one API family cannot take (a ``function`` message for Gemini, ``n`` for Ollama) made
the worker's task die without a reply, so the caller waited the whole request timeout and
got a 504. Plus the answers FastAPI would otherwise shape its own way (404, 405, 422).
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.security.support import error_shape_problem
from tests.support.farm import FarmFactory

pytestmark = pytest.mark.integration

KEY = "sk-shapes-0123456789"


def ask(model: str = "chat", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}


def nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = [value]
    return value


def shaped(r: httpx.Response) -> dict[str, Any]:
    problem = error_shape_problem(r.status_code, r.headers.get("content-type", ""), r.content)
    assert problem is None, problem
    error: dict[str, Any] = r.json()["error"]
    return error


def test_routing_and_parsing_errors_are_openai_shaped(make_farm: FarmFactory) -> None:
    farm = make_farm(api_keys=KEY)
    auth = {"Authorization": f"Bearer {KEY}"}
    json_headers = {**auth, "content-type": "application/json"}
    with farm.client() as http:
        cases = {
            "no key": (http.get("/v1/models"), 401),
            "unknown path": (http.get("/v2/nothing", headers=auth), 404),
            "wrong method": (http.delete("/v1/chat/completions", headers=auth), 405),
            "broken JSON": (
                http.post("/v1/chat/completions", content=b"{", headers=json_headers),
                400,
            ),
            "not an object": (
                http.post("/v1/chat/completions", content=b"[]", headers=json_headers),
                400,
            ),
            "form body": (
                http.post("/v1/chat/completions", data={"model": "chat"}, headers=auth),
                400,
            ),
            "no messages": (
                http.post("/v1/chat/completions", json={"model": "chat"}, headers=auth),
                400,
            ),
        }
    for name, (r, status) in cases.items():
        assert r.status_code == status, (name, r.text)
        shaped(r)


@pytest.mark.parametrize(
    ("extra", "where"),
    [
        ({"seed": 2**64}, "seed"),
        ({"max_tokens": -(2**70)}, "max_tokens"),
        ({"metadata": {"n": [1, 2, 10**30]}}, "metadata.n.2"),
        ({"x_deep": nested(300)}, "x_deep"),
    ],
)
def test_values_no_encoder_can_carry_are_refused(
    make_farm: FarmFactory, extra: dict[str, Any], where: str
) -> None:
    farm = make_farm()
    with farm.client() as http:
        r = http.post("/v1/chat/completions", json=ask(**extra))
    assert r.status_code == 400, r.text
    assert where in shaped(r)["message"]


def test_a_request_a_family_cannot_take_is_refused_at_once(make_farm: FarmFactory) -> None:
    farm = make_farm(request_timeout_s=30)
    function_message = {"role": "function", "name": "f", "content": "result"}
    started = time.monotonic()
    with farm.client() as http:
        gemini = http.post(
            "/v1/chat/completions",
            json={"model": "p-gemini/p-gemini-m", "messages": [function_message]},
        )
        streamed = http.post(
            "/v1/chat/completions", json=ask("p-ollama/p-ollama-m", n=2, stream=True)
        )
        elsewhere = http.post(
            "/v1/chat/completions",
            json=ask("p-ollama/p-ollama-m", n=2),
            headers={"X-Relay-Fallback": "any"},
        )
    assert time.monotonic() - started < 10  # not the 30 s request timeout
    assert gemini.status_code == 400, gemini.text
    assert "function" in shaped(gemini)["message"]
    assert streamed.status_code == 400, streamed.text
    shaped(streamed)
    assert elsewhere.status_code == 200, elsewhere.text
    assert elsewhere.headers["x-relay-provider"] != "p-ollama"
    assert farm.sim_stats()["providers"]["p-ollama"]["requests"] == 0
