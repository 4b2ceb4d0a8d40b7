"""Faults and limits: outages, garbage, hangs, latency, flapping, windows, concurrency."""

from __future__ import annotations

import asyncio
import time

import httpx
import orjson
import pytest

from tests.integration.simulator.support import (
    FAMILIES,
    call,
    error_kind,
    ollama,
    openai,
    patched,
    sse,
    stats,
    wait_until,
)

# ---- faults ---------------------------------------------------------------------------------

_UNAVAILABLE = {"openai": "server_error", "gemini": "UNAVAILABLE", "anthropic": "overloaded_error"}
_SERVER_ERROR = {"openai": "server_error", "gemini": "INTERNAL", "anthropic": "api_error"}
_RATE_LIMITED = {
    "openai": "requests",
    "gemini": "RESOURCE_EXHAUSTED",
    "anthropic": "rate_limit_error",
}


@pytest.mark.parametrize("family", FAMILIES)
def test_outage_is_503_in_the_family_shape(http, family):
    provider = f"f-{family}"
    with patched(http, provider, outage=True):
        r = call(http, family, provider, "hi")
        assert r.status_code == 503
        assert error_kind(family, r) == _UNAVAILABLE.get(family, "error")
    assert call(http, family, provider, "hi").status_code == 200


@pytest.mark.parametrize("family", FAMILIES)
def test_garbage_is_a_200_that_is_not_json(http, family):
    provider = f"f-{family}"
    with patched(http, provider, garbage=True):
        r = call(http, family, provider, "hi")
    assert r.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(r.content)
    r = call(http, family, provider, "hi [sim:garbage]")
    assert r.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(r.content)


@pytest.mark.parametrize("family", FAMILIES)
def test_truncate_drops_the_connection_half_way_through_a_200(http, family):
    provider = f"f-{family}"
    before = http.get("/_sim/stats").json()["providers"][provider]
    with patched(http, provider, truncate=True), pytest.raises(httpx.RemoteProtocolError):
        call(http, family, provider, "hi")
    with pytest.raises(httpx.RemoteProtocolError):
        call(http, family, provider, "hi [sim:truncate]")
    after = http.get("/_sim/stats").json()["providers"][provider]
    assert after["truncated"] == before["truncated"] + 2
    assert after["succeeded"] == before["succeeded"]


@pytest.mark.parametrize("family", FAMILIES)
def test_triggers_500_and_429(http, family):
    provider = f"f-{family}"
    r = call(http, family, provider, "boom [sim:500]")
    assert r.status_code == 500
    assert error_kind(family, r) == _SERVER_ERROR.get(family, "error")
    r = call(http, family, provider, "slow down [sim:429]")
    assert r.status_code == 429
    assert error_kind(family, r) == _RATE_LIMITED.get(family, "error")


@pytest.mark.parametrize("family", FAMILIES)
def test_hang_never_answers_until_the_client_gives_up(sim, http, family):
    provider = f"f-{family}"
    before = stats(http, provider)["hung"]
    with patched(http, provider, hang=True), httpx.Client(base_url=sim.url, timeout=0.3) as client:
        started = time.perf_counter()
        with pytest.raises(httpx.ReadTimeout):
            call(client, family, provider, "anyone?")
        assert time.perf_counter() - started >= 0.3
    assert stats(http, provider)["hung"] == before + 1
    assert wait_until(lambda: stats(http, provider)["in_flight"] == 0)


def test_hang_trigger(sim, http):
    with httpx.Client(base_url=sim.url, timeout=0.2) as client, pytest.raises(httpx.ReadTimeout):
        openai(client, "f-openai", "hello? [sim:hang]")


def test_slow_trigger_delays_the_answer(http):
    started = time.perf_counter()
    r = openai(http, "f-openai", "take your time [sim:slow=250]")
    assert r.status_code == 200
    assert time.perf_counter() - started >= 0.25


def test_latency_applies_to_every_answer(http):
    with patched(http, "f-ollama", latency_ms=150):
        started = time.perf_counter()
        assert ollama(http, "f-ollama", "hi", stream=False).status_code == 200
        assert time.perf_counter() - started >= 0.15


def test_paced_stream_spaces_its_chunks(http):
    with patched(http, "f-ollama", chunk_delay_ms=40, chunk_chars=8):
        started = time.perf_counter()
        with http.stream(
            "POST",
            "/f-ollama/api/chat",
            json={"model": "m1", "messages": [{"role": "user", "content": "x" * 24}]},
        ) as r:
            arrivals = [time.perf_counter() - started for _ in r.iter_lines()]
    # "sim:f-ollama/m1: " + 24 chars = 41 chars → 6 pieces and the final line: 6 gaps of 40 ms.
    assert len(arrivals) == 7
    assert arrivals[-1] - arrivals[0] >= 0.2


def test_error_rate(http):
    codes = [openai(http, "mixed", f"q{i}").status_code for i in range(200)]
    assert set(codes) == {200, 500}
    assert 60 <= codes.count(500) <= 140
    with patched(http, "mixed", error_rate=1.0):
        assert {openai(http, "mixed", "q").status_code for _ in range(10)} == {500}


def test_flap_alternates_on_the_clock(http, clock):
    assert openai(http, "flap", "hi").status_code == 200
    clock.now += 10
    assert openai(http, "flap", "hi").status_code == 503
    clock.now += 10
    assert openai(http, "flap", "hi").status_code == 200


def test_sliding_window_frees_capacity_on_the_clock(http, clock):
    assert [openai(http, "slide", "a").status_code for _ in range(3)] == [200, 200, 429]
    clock.now += 30
    assert openai(http, "slide", "a").status_code == 429
    clock.now += 30
    assert openai(http, "slide", "a").status_code == 200


def test_one_second_window_holds_rpm_over_60(http, clock):
    assert [openai(http, "persec", "a").status_code for _ in range(3)] == [200, 200, 429]
    r = openai(http, "persec", "a")
    assert r.headers["x-ratelimit-limit-requests"] == "2"
    clock.now += 1
    assert openai(http, "persec", "a").status_code == 200


async def test_concurrency_limit(sim, http):
    async with httpx.AsyncClient(base_url=sim.url, timeout=5) as client:
        body = {"model": "m1", "messages": [{"role": "user", "content": "hi"}]}
        codes = await asyncio.gather(
            *(client.post("/conc/v1/chat/completions", json=body) for _ in range(4))
        )
    assert sorted(r.status_code for r in codes) == [200, 200, 429, 429]
    # Refused requests are never in flight: only the two admitted ones were.
    assert stats(http, "conc")["max_in_flight"] == 2


# ---- a provider that quotes the caller's key -------------------------------------------------

SIM_KEY = "sk-sim_echo/key-0123456789"


def test_sim_400_trigger_refuses_the_request_in_the_family_shape(http):
    r = openai(http, "f-openai", "[sim:400] please")
    assert r.status_code == 400
    assert error_kind("openai", r) == "invalid_request_error"
    assert "[sim:400] please" in r.json()["error"]["message"]


def test_echo_key_in_errors_quotes_the_key_json_escaped(http):
    with patched(http, "f-openai", echo_key_in_errors=True):
        r = openai(http, "f-openai", "[sim:500]", key=SIM_KEY)
    assert r.status_code == 500
    assert SIM_KEY.encode() not in r.content  # escaped: no raw-text search finds it
    assert b"\\u" in r.content and b"\\/" in r.content
    assert SIM_KEY in r.json()["error"]["message"]  # ... yet it is the key, once decoded
    assert SIM_KEY not in openai(http, "f-openai", "[sim:500]", key=SIM_KEY).text  # off again


def test_echo_key_in_answers_quotes_the_key_in_the_text(http):
    with patched(http, "f-openai", echo_key_in_answers=True):
        whole = openai(http, "f-openai", "hi", key=SIM_KEY)
        streamed = openai(http, "f-openai", "hi", key=SIM_KEY, stream=True)
    assert SIM_KEY in whole.json()["choices"][0]["message"]["content"]
    pieces = [
        orjson.loads(data)["choices"][0]["delta"].get("content") or ""
        for _, data in sse(streamed.text)
        if data != "[DONE]" and orjson.loads(data)["choices"]
    ]
    assert SIM_KEY not in pieces and SIM_KEY in "".join(pieces)  # split across chunks
    assert SIM_KEY not in openai(http, "f-openai", "hi", key=SIM_KEY).text
