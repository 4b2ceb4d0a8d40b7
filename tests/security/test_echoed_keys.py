"""Upstreams that quote the provider key back: no part of it reaches a tenant.

The simulator plays a careless provider of each API family (``echo_key_in_errors``: every
error message quotes the key it was sent, one character JSON-escaped; ``echo_key_in_answers``:
every answer's text ends with it, which a stream splits across chunks). Relay must scrub the
key from the decoded text wherever it goes: chat answers and errors, streams, batch output
and error files, and everything stored in Redis meanwhile.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.batch.conftest import (
    BATCH_DEFAULTS,
    chat_line,
    create,
    jsonl,
    read_lines,
    upload,
    wait_for,
)
from tests.integration.farm.conftest import FAMILIES
from tests.security.support import RedisTap, dump_prefix
from tests.support.farm import Farm, FarmFactory, model, sim_provider

pytestmark = pytest.mark.integration

GATEWAY_KEY = f"sk-relay-gw-{uuid.uuid4().hex}"
KEYS = {name: f"sk-{name}-{uuid.uuid4().hex}" for name, _ in FAMILIES}
FRAGMENT = 12  # no run of this many characters of a key may reach a tenant
# The simulator's 400 message: "Invalid request (triggered by [sim:400]): <text> (request sent
# with key <key>)". Paddings that put the cut at 300 characters inside the key, 8 to 30
# characters into it.
MESSAGE_HEAD = len("Invalid request (triggered by [sim:400]): ")
KEY_HEAD = len(" (request sent with key ")


def env_name(provider: str) -> str:
    return f"ECHOTEST_{provider.upper().replace('-', '_')}_KEY"


@pytest.fixture
def keyed_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, key in KEYS.items():
        monkeypatch.setenv(env_name(name), key)
    yield


def keyed_providers(sim_url: str) -> list[dict[str, Any]]:
    return [
        {**sim_provider(name, api, sim_url, [model(f"{name}-m")]), "api_key_env": env_name(name)}
        for name, api in FAMILIES
    ]


def echo_farm(make_farm: FarmFactory, tmp_path: Path, **echo: bool) -> Farm:
    return make_farm(
        keyed_providers,
        sim_overrides=echo,
        api_keys=GATEWAY_KEY,
        storage_dir=tmp_path / "files",
        **BATCH_DEFAULTS,
    )


def fragments(key: str) -> list[str]:
    return [key[i : i + FRAGMENT] for i in range(len(key) - FRAGMENT + 1)]


def leaked(texts: list[str] | list[bytes]) -> list[str]:
    """Which keys have a fragment in any of ``texts`` (decoded JSON strings included)."""
    found = set()
    for text in texts:
        raw = text.decode(errors="replace") if isinstance(text, bytes) else text
        views = [raw, *_decoded_strings(raw)]
        for name, key in KEYS.items():
            if any(f in view for view in views for f in fragments(key)):
                found.add(name)
    return sorted(found)


def _decoded_strings(text: str) -> list[str]:
    """Every JSON document's strings, decoded: a whole body, or one per line (JSONL, SSE)."""
    out: list[str] = []
    for line in [text, *text.splitlines()]:
        try:
            value = json.loads(line.removeprefix("data: "))
        except ValueError:
            continue
        out.append(json.dumps(value, ensure_ascii=False))
    return out


def ask(text: str, target: str, **extra: Any) -> dict[str, Any]:
    return {"model": target, "messages": [{"role": "user", "content": text}], **extra}


def streamed_text(r: httpx.Response) -> str:
    """The answer's text, the chunks' pieces joined (a key split across chunks is whole here)."""
    pieces = []
    for line in r.text.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            for choice in json.loads(line[6:]).get("choices", []):
                pieces.append(choice["delta"].get("content") or "")
    return "".join(pieces)


@pytest.mark.usefixtures("keyed_env")
def test_a_key_quoted_json_escaped_stays_out_of_the_batch_error_file(
    make_farm: FarmFactory, tmp_path: Path
) -> None:
    """#15 item 7: the upstream writes ``\\u00XX`` and ``\\/`` inside the key it quotes."""
    farm = echo_farm(make_farm, tmp_path, echo_key_in_errors=True)
    rows = [chat_line(name, "[sim:400] refuse me", model=f"{name}/{name}-m") for name in KEYS]
    with RedisTap() as tap, farm.client(headers={"Authorization": f"Bearer {GATEWAY_KEY}"}) as h:
        batch = create(h, upload(h, jsonl(rows)), window="1h")
        done = wait_for(h, batch["id"])
        errors = read_lines(h, done["error_file_id"])
        raw = h.get(f"/v1/files/{done['error_file_id']}/content").text
    assert done["status"] == "completed" and len(errors) == len(KEYS), done
    # The provider's own answer is in the file (so its quote of the key went through Relay).
    bodies = {e["custom_id"]: e["response"] for e in errors}
    assert {b["status_code"] for b in bodies.values()} == {400}
    assert "[redacted]" in raw
    assert leaked([raw]) == []
    assert leaked(tap.lines) == []


@pytest.mark.usefixtures("keyed_env")
def test_a_key_cut_by_the_message_limit_is_redacted_first(
    make_farm: FarmFactory, tmp_path: Path
) -> None:
    """#15 item 8: messages are cut to 300 characters; the cut must not fall inside a key."""
    farm = echo_farm(make_farm, tmp_path, echo_key_in_errors=True)
    answers = []
    with farm.client(headers={"Authorization": f"Bearer {GATEWAY_KEY}"}) as http:
        for name in KEYS:
            for into in (FRAGMENT, 20, 30):
                pad = 300 - MESSAGE_HEAD - KEY_HEAD - into - len("[sim:400] ")
                text = "[sim:400] " + "x" * pad
                r = http.post("/v1/chat/completions", json=ask(text, f"{name}/{name}-m"))
                assert r.status_code == 400, r.text
                answers.append(r.text)
    assert all("[sim:400]" in a for a in answers)  # the upstream's message did come through
    assert leaked(answers) == []


@pytest.mark.usefixtures("keyed_env")
def test_a_key_echoed_in_answers_is_scrubbed_everywhere(
    make_farm: FarmFactory, tmp_path: Path
) -> None:
    """#15 item 9: answers, streams (the key split across chunks), batch output, Redis."""
    farm = echo_farm(make_farm, tmp_path, echo_key_in_answers=True)
    texts: list[str] = []
    with RedisTap() as tap, farm.client(headers={"Authorization": f"Bearer {GATEWAY_KEY}"}) as h:
        for name in KEYS:
            target = f"{name}/{name}-m"
            whole = h.post("/v1/chat/completions", json=ask("hi", target))
            assert whole.status_code == 200, whole.text
            texts += [whole.text, whole.json()["choices"][0]["message"]["content"]]
            stream = h.post("/v1/chat/completions", json=ask("hi", target, stream=True))
            assert stream.status_code == 200, stream.text
            texts += [stream.text, streamed_text(stream)]
        rows = [chat_line(name, "hi", model=f"{name}/{name}-m") for name in KEYS]
        batch = create(h, upload(h, jsonl(rows)), window="1h")
        done = wait_for(h, batch["id"])
        output = read_lines(h, done["output_file_id"])
        texts.append(json.dumps(output))
        stored = dump_prefix(farm.redis, farm.settings.key_prefix)
    assert done["request_counts"]["completed"] == len(KEYS), done
    contents = [o["response"]["body"]["choices"][0]["message"]["content"] for o in output]
    # Each answer did quote its key, and got "[redacted]" in its place.
    assert all(c.endswith("(your key is [redacted])") for c in contents), contents
    assert sum(t.endswith("(your key is [redacted])") for t in texts) == 2 * len(KEYS), texts
    assert leaked(texts) == []
    assert leaked(tap.lines) == []
    assert leaked(stored) == []
