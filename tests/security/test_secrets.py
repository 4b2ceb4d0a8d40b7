"""Provider keys and gateway keys never leak: not in answers, logs, task messages or Redis.

A farm whose five providers each need a key from the environment: the four simulated API
families, and a "leaky" OpenAI-family upstream that echoes the key it got in every error and
in a garbled answer (as careless providers do). Requests succeed, stream, fail upstream (401,
400, 5xx, garbage) and fail at the gateway (no key, wrong key). Every answer's body and
headers, every log record, and every command any client sent to Redis meanwhile (``MONITOR``:
task messages, replies, results, stream entries, counters) is then searched for the keys, in
clear and inside base64 (kombu's task bodies).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from io import StringIO
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from relay_cli.logs import RedactingFilter, secret_values
from relay_core.owners import owner_id, owner_secret
from tests.integration.farm.conftest import FAMILIES
from tests.security.support import Recorder, RedisTap, decoded_views, dump_prefix, leaks
from tests.support.farm import Farm, FarmFactory, model, sim_provider

pytestmark = pytest.mark.integration

GATEWAY_KEY = f"sk-relay-gw-{uuid.uuid4().hex}"
OTHER_GATEWAY_KEY = f"sk-relay-gw2-{uuid.uuid4().hex}"
WRONG_GATEWAY_KEY = f"sk-relay-wrong-{uuid.uuid4().hex}"
PROVIDER_KEYS = {name: f"sk-{name}-{uuid.uuid4().hex}" for name, _ in FAMILIES}
LEAKY = "p-leaky"
LEAKY_KEY = f"sk-leaky-{uuid.uuid4().hex}"
MARKER = f"marker-{uuid.uuid4().hex[:12]}"  # a prompt word: proves the searches look inside


def env_name(provider: str) -> str:
    return f"SECTEST_{provider.upper().replace('-', '_')}_KEY"


ALL_SECRETS = [*PROVIDER_KEYS.values(), LEAKY_KEY, GATEWAY_KEY, OTHER_GATEWAY_KEY]


def leaky_answer(request: Request, body: bytes) -> Response:
    """An OpenAI-family upstream that puts the caller's credentials in what it says."""
    auth = request.headers.get("authorization", "")
    text = json.loads(body)["messages"][-1]["content"]
    mode = text.split()[0]
    if mode == "e500":
        return JSONResponse({"error": {"message": f"internal error for {auth}"}}, 500)
    if mode == "e400":
        return JSONResponse(
            {"error": {"message": f"bad request from {auth}", "type": "invalid_request_error"}},
            400,
        )
    if mode == "e401":
        return JSONResponse(
            {
                "error": {
                    "message": f"Incorrect API key provided: {auth}",
                    "code": "invalid_api_key",
                }
            },
            401,
        )
    if mode == "garbage":
        return PlainTextResponse(f"<html>proxy error, credentials {auth}</html>", 200)
    return JSONResponse(
        {
            "id": "x",
            "object": "chat.completion",
            "created": 1,
            "model": "leaky-m",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "ok"},
                    "finish_reason": "stop",
                }
            ],
        }
    )


@pytest.fixture
def leaky() -> Iterator[tuple[Recorder, str]]:
    recorder = Recorder(leaky_answer)
    with recorder.serving() as url:
        yield recorder, url


@pytest.fixture
def keyed_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, key in PROVIDER_KEYS.items():
        monkeypatch.setenv(env_name(name), key)
    monkeypatch.setenv(env_name(LEAKY), LEAKY_KEY)
    monkeypatch.setenv("RELAY_API_KEYS", f"{GATEWAY_KEY},{OTHER_GATEWAY_KEY}")


def keyed_providers(sim_url: str, leaky_url: str) -> list[dict[str, Any]]:
    providers = [
        {**sim_provider(name, api, sim_url, [model(f"{name}-m")]), "api_key_env": env_name(name)}
        for name, api in FAMILIES
    ]
    leaky = sim_provider(LEAKY, "openai", sim_url, [model("leaky-m")])
    leaky.update(base_url=f"{leaky_url}/v1", api_key_env=env_name(LEAKY))
    return [*providers, leaky]


def ask(text: str, target: str, **extra: Any) -> dict[str, Any]:
    return {"model": target, "messages": [{"role": "user", "content": text}], **extra}


def exchange(http: httpx.Client, method: str, path: str, **kw: Any) -> tuple[int, bytes]:
    """One request; the status and everything the caller got back (headers and body)."""
    r = http.request(method, path, **kw)
    head = "\n".join(f"{k}: {v}" for k, v in r.headers.items())
    return r.status_code, head.encode() + b"\n\n" + r.content


def drive(farm: Farm) -> list[tuple[str, int, bytes]]:
    """Successes, upstream failures of every kind, gateway refusals and the read endpoints."""
    auth = {"Authorization": f"Bearer {GATEWAY_KEY}"}
    calls: list[tuple[str, str, dict[str, Any]]] = []
    for name, _ in FAMILIES:
        calls.append(("POST", "/v1/chat/completions", {"json": ask(MARKER, f"{name}/{name}-m")}))
    calls.append(("POST", "/v1/chat/completions", {"json": ask("hi", "p-openai-m", stream=True)}))
    for mode in ("e500", "e400", "garbage"):
        calls.append(("POST", "/v1/chat/completions", {"json": ask(mode, "leaky-m")}))
    calls.append(("POST", "/v1/chat/completions", {"json": ask("e500", "leaky-m", stream=True)}))
    calls.append(("POST", "/v1/chat/completions", {"json": ask("e401", "leaky-m")}))
    out = []
    with farm.client(headers=auth) as http:
        for method, path, kw in calls:
            out.append((f"{method} {path} {kw}", *exchange(http, method, path, **kw)))
        farm.sim("p-gemini", api_key="a-key-relay-does-not-have")  # upstream 401
        farm.sim("p-claude", outage=True)  # upstream 503
        farm.sim("p-ollama", error_rate=1.0)  # upstream 500
        for name in ("p-gemini", "p-claude", "p-ollama"):
            kw = {"json": ask("fail", f"{name}/{name}-m")}
            out.append((f"{name} failing", *exchange(http, "POST", "/v1/chat/completions", **kw)))
        # A worker forwards this one to another provider: a task message Relay itself sends.
        request = ask(MARKER, "p-ollama/p-ollama-m", user=MARKER)  # a top-level string too
        kw = {"json": request, "headers": {"X-Relay-Fallback": "any"}}
        out.append(("failover", *exchange(http, "POST", "/v1/chat/completions", **kw)))
        for path in (
            "/v1/models",
            f"/v1/models/{LEAKY}/leaky-m",
            "/v1/usage",
            "/ready",
            "/metrics",
        ):
            out.append((f"GET {path}", *exchange(http, "GET", path)))
    with farm.client() as anonymous:
        out.append(("no key", *exchange(anonymous, "GET", "/v1/models")))
        wrong = {"Authorization": f"Bearer {WRONG_GATEWAY_KEY}"}
        out.append(("wrong key", *exchange(anonymous, "GET", "/v1/models", headers=wrong)))
    return out


def log_text(records: list[logging.LogRecord]) -> list[str]:
    return [f"{r.getMessage()}\n{r.exc_text or ''}\n{r.__dict__!r}" for r in records]


@pytest.mark.usefixtures("keyed_env")
def test_no_key_leaks_anywhere(
    make_farm: FarmFactory,
    leaky: tuple[Recorder, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder, leaky_url = leaky
    caplog.set_level(logging.DEBUG)
    redacted = StringIO()
    handler = logging.StreamHandler(redacted)
    handler.addFilter(RedactingFilter(secret_values()))
    logging.getLogger().addHandler(handler)
    try:
        with RedisTap() as tap:
            farm = make_farm(
                lambda sim_url: keyed_providers(sim_url, leaky_url),
                api_keys=f"{GATEWAY_KEY},{OTHER_GATEWAY_KEY}",
            )
            answers = drive(farm)
            stored = dump_prefix(farm.redis, farm.settings.key_prefix)
    finally:
        logging.getLogger().removeHandler(handler)

    statuses = {label: status for label, status, _ in answers}
    assert statuses["no key"] == statuses["wrong key"] == 401
    # Every path was taken: answers, a refused request, upstream failures, gateway refusals.
    assert set(statuses.values()) == {200, 400, 401, 503}, statuses
    # The leaky upstream did get its key (so it had something to leak), and nothing else.
    sent = {s.headers.get("authorization") for s in recorder.seen}
    assert sent == {f"Bearer {LEAKY_KEY}"}
    assert not leaks([GATEWAY_KEY, OTHER_GATEWAY_KEY], [repr(s) for s in recorder.seen])

    secrets = [*ALL_SECRETS, owner_secret(farm.settings).decode()]  # the owner ids' key too
    assert leaks([*secrets, WRONG_GATEWAY_KEY], [a for _, _, a in answers]) == []
    assert leaks([*secrets, WRONG_GATEWAY_KEY], log_text(caplog.records)) == []
    assert leaks(ALL_SECRETS, [redacted.getvalue()]) == []
    assert leaks(secrets, tap.lines) == []
    assert leaks(secrets, stored) == []
    # The searches do look where the prompt went: queue messages (base64) and stored results.
    assert leaks([MARKER], tap.lines) == [MARKER]
    assert any(b":result:" in line for line in stored)
    # Task messages, the API's and the worker's forward alike, carry the prompt only in their
    # body: their headers (what Flower shows as the arguments) hold references.
    pushes = [line for line in tap.commands(b"LPUSH") if farm.settings.key_prefix.encode() in line]
    assert statuses["failover"] == 200 and len(pushes) >= 2
    assert not [line for line in pushes if MARKER.encode() in line]


def test_task_message_carries_references_not_secrets(
    make_farm: FarmFactory, monkeypatch: pytest.MonkeyPatch, leaky: tuple[Recorder, str]
) -> None:
    """With no worker to take it, the raw message stays on the provider's queue: read it."""
    for name, key in PROVIDER_KEYS.items():
        monkeypatch.setenv(env_name(name), key)
    monkeypatch.setenv(env_name(LEAKY), LEAKY_KEY)
    _, leaky_url = leaky
    farm = make_farm(
        lambda sim_url: keyed_providers(sim_url, leaky_url),
        workers=0,
        request_timeout_s=0.5,
        api_keys=GATEWAY_KEY,
    )
    with farm.client(headers={"Authorization": f"Bearer {GATEWAY_KEY}"}) as http:
        r = http.post("/v1/chat/completions", json=ask(MARKER, "p-openai/p-openai-m"))
    assert r.status_code == 504
    raw = farm.redis.lrange(f"{farm.settings.key_prefix}.p-openai", 0, -1)
    assert len(raw) == 1
    message = json.loads(raw[0])
    assert message["headers"]["argsrepr"].startswith("<envelope ")  # what Flower shows
    assert MARKER not in message["headers"]["argsrepr"]
    args, kwargs, _ = json.loads(decoded_views(message["body"].encode())[1])
    envelope = args[0]
    assert kwargs == {}
    assert envelope["candidates"] == [{"provider": "p-openai", "model": "p-openai-m"}]
    assert envelope["owner"] == owner_id(owner_secret(farm.settings), GATEWAY_KEY)
    assert envelope["request"]["messages"][0]["content"] == MARKER
    assert leaks(ALL_SECRETS, [raw[0]]) == []


def test_redacting_filter_knows_every_configured_secret() -> None:
    """The log safety net: each provider key and each gateway key of a list is redacted."""
    env = {env_name(n): k for n, k in PROVIDER_KEYS.items()}
    env["RELAY_API_KEYS"] = f"{GATEWAY_KEY},{OTHER_GATEWAY_KEY}"
    env["RELAY_KEY_PREFIX"] = "relay"  # not a secret: must stay readable
    redactor = RedactingFilter(secret_values(env))
    for secret in [*PROVIDER_KEYS.values(), GATEWAY_KEY, OTHER_GATEWAY_KEY]:
        record = logging.LogRecord("t", logging.INFO, __file__, 1, "got %s", (secret,), None)
        redactor.filter(record)
        assert record.getMessage() == "got ***"
    assert redactor.redact("prefix relay") == "prefix relay"
