"""No request can make Relay call a URL the catalogue does not name.

A second server ("evil") records every request it gets. Requests name it every way a client
might try: as the model (a URL, path traversal, query strings), in body fields that SDKs and
other gateways honour (``base_url``, ``api_base``, ``extra_headers``...), in headers, and in an
image URL. It must get nothing, and the simulator must see exactly one call per answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.farm.conftest import FAMILIES
from tests.security.support import Recorder, never_called
from tests.support.farm import FarmFactory

pytestmark = pytest.mark.integration


@pytest.fixture
def evil() -> Iterator[tuple[Recorder, str]]:
    recorder = Recorder(never_called)
    with recorder.serving() as url:
        yield recorder, url


def hostile_models(evil: str) -> list[str]:
    host = evil.removeprefix("http://")
    return [
        f"{evil}/v1",
        f"{evil}/v1/chat/completions",
        f"//{host}/x",
        host,
        "../../",
        "../../../etc/passwd",
        "p-openai/../../x",
        "p-openai/../p-gemini/p-gemini-m",
        "p-openai/p-openai-m/../../../x",
        "p-openai/%2e%2e/%2e%2e/x",
        f"p-openai/{evil}",
        f"p-openai/p-openai-m@{host}",
        "p-openai-m?base_url=x",
        "p-openai-m#x",
        "p-gemini/p-gemini-m:generateContent?key=x",
        "p-openai/p-openai-m\r\nHost: evil",
    ]


def hostile_fields(evil: str) -> list[dict[str, Any]]:
    return [
        {"base_url": evil},
        {"api_base": f"{evil}/v1"},
        {"baseURL": evil, "endpoint": evil, "url": evil},
        {"extra_headers": {"Host": evil.removeprefix("http://")}},
        {"extra_query": {"url": evil}, "extra_body": {"base_url": evil}},
        {"provider": {"base_url": evil, "name": "evil", "api": "openai"}},
        {"api_key": "sk-attacker", "organization": evil},
    ]


def hostile_headers(evil: str) -> list[dict[str, str]]:
    host = evil.removeprefix("http://")
    return [
        {"X-Forwarded-Host": host, "X-Forwarded-Proto": "http"},
        {"X-Relay-Base-Url": evil, "OpenAI-Base-URL": evil, "X-Upstream": evil},
        {"Forwarded": f"host={host}"},
    ]


def ask(model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hello"}], **extra}


def test_models_naming_other_urls_are_unknown_models(
    make_farm: FarmFactory, evil: tuple[Recorder, str]
) -> None:
    recorder, evil_url = evil
    farm = make_farm()
    with farm.client(headers={"X-Relay-Fallback": "any"}) as http:
        for model in hostile_models(evil_url):
            r = http.post("/v1/chat/completions", json=ask(model))
            assert r.status_code in (400, 404), (model, r.status_code, r.text)
            assert r.json()["error"]["param"] in ("model", None), r.text
            r = http.post(
                "/v1/batches/estimate",
                json={"endpoint": "/v1/chat/completions", "requests": [ask(model)]},
            )
            assert r.status_code < 500, (model, r.status_code, r.text)
    assert recorder.seen == []
    assert farm.sim_stats()["totals"]["requests"] == 0


def test_fields_and_headers_cannot_redirect_a_call(
    make_farm: FarmFactory, evil: tuple[Recorder, str]
) -> None:
    recorder, evil_url = evil
    farm = make_farm()
    targets = ["chat", *(f"{name}/{name}-m" for name, _ in FAMILIES)]
    image = {"type": "image_url", "image_url": {"url": f"{evil_url}/pixel.png"}}
    answered = 0
    with farm.client() as http:
        for target in targets:
            attempts: list[tuple[dict[str, Any], dict[str, str]]] = [
                (ask(target, **fields), {}) for fields in hostile_fields(evil_url)
            ]
            attempts += [(ask(target), headers) for headers in hostile_headers(evil_url)]
            picture = [{"role": "user", "content": [{"type": "text", "text": "look"}, image]}]
            attempts.append(({"model": target, "messages": picture}, {}))
            for body, headers in attempts:
                r = http.post("/v1/chat/completions", json=body, headers=headers)
                assert r.status_code in (200, 400), (target, body, r.status_code, r.text)
                if r.status_code == 200:
                    answered += 1
                    assert r.headers["x-relay-provider"] in {name for name, _ in FAMILIES}
    assert recorder.seen == []
    assert answered >= len(targets) * len(hostile_headers(evil_url))  # the plain ones, at least
    assert farm.sim_stats()["totals"]["requests"] == answered  # one catalogue call per answer
