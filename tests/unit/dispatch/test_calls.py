"""The executor's upstream calls: success, failover on 5xx, 429 pacing, refusals that end the
request, a refused key, and the event sinks hearing of every call."""

from __future__ import annotations

import logging

import httpx
import pytest

from relay_core.breaker import fingerprint
from relay_core.catalogue.models import Limits
from relay_core.dispatch.envelope import Kind
from relay_core.errors import RelayError, UpstreamUnavailable
from relay_core.events import CallRecord
from relay_core.limits import Reason
from relay_sim import SimServer
from tests.unit.dispatch.support import (
    ENQUEUED_AGO_S,
    KEY,
    MODEL,
    BrokenSink,
    answer,
    build,
    done,
    forward,
    mock_client,
    order,
    provider_config,
    sim_config,
    upstream_calls,
)
from tests.unit.limits._support import START

WRONG_KEY = "sk-not-the-right-one-42424242"


async def test_success_is_done_with_the_reply_fields(
    sim: SimServer, http: httpx.AsyncClient
) -> None:
    farm = build(http, [sim_config(sim, "a", limits=Limits(tpm=60_000))])

    reply = done(await farm.visit(farm.envelope("a", text="Hello")))

    assert reply.ok and reply.error is None
    assert (reply.id, reply.provider, reply.model, reply.attempts) == ("env-1", "a", MODEL, 1)
    assert reply.queue_wait_s == pytest.approx(ENQUEUED_AGO_S)
    assert reply.completion is not None
    assert answer(reply)["model"] == MODEL
    assert answer(reply)["choices"][0]["message"] == {
        "role": "assistant",
        "content": "sim:a/m1: Hello",
        "refusal": None,  # OpenAI's nulls are kept (issue 14, item 8)
    }
    assert answer(reply)["choices"][0]["logprobs"] is None
    usage = {"prompt_tokens": 2, "completion_tokens": 4, "total_tokens": 6}
    assert answer(reply)["usage"] == usage
    # The TPM bucket was debited by the estimate, then corrected to the real 6 tokens.
    (tpm,) = [lv for lv in (await farm.peek("a")).levels if lv.reason is Reason.tpm]
    assert tpm.limit - tpm.available == pytest.approx(6)


async def test_a_5xx_forwards_to_the_next_candidate_keeping_the_failure(
    sim: SimServer, http: httpx.AsyncClient
) -> None:
    farm = build(http, [sim_config(sim, "down"), sim_config(sim, "a")])
    before = upstream_calls(sim, "down")

    step = forward(await farm.visit(farm.envelope("down", "a")))

    env = step.envelope
    assert step.delay_s == 0.0
    assert (order(env), env.index, env.attempts) == (["down", "a"], 1, 1)
    (failure,) = env.failures
    assert (failure.kind, failure.provider, failure.model, failure.upstream_status) == (
        "UpstreamUnavailable",
        "down",
        MODEL,
        503,
    )
    assert upstream_calls(sim, "down") == before + 1
    (breaker,) = await farm.breaker.state([farm.breaker.key("down", MODEL)], farm.clock.now)
    assert breaker.consecutive_failures == 1

    reply = done(await farm.visit(env))
    assert (reply.ok, reply.provider, reply.attempts) == (True, "a", 2)


async def test_a_5xx_on_the_last_candidate_ends_interactive_and_backs_off_batch(
    sim: SimServer, http: httpx.AsyncClient
) -> None:
    farm = build(http, [sim_config(sim, "down")])

    reply = done(await farm.visit(farm.envelope("down")))
    assert reply.error is not None
    assert reply.error.kind == "ProvidersDown"
    assert "down: down answered HTTP 503" in reply.error.message

    step = forward(await farm.visit(farm.envelope("down", kind=Kind.batch)))
    assert (step.envelope.index, step.envelope.attempts, step.delay_s) == (0, 1, 2.0)


async def test_a_429_pauses_the_provider_and_moves_on_without_failing(
    sim: SimServer, http: httpx.AsyncClient
) -> None:
    farm = build(http, [sim_config(sim, "a"), sim_config(sim, "b")])

    step = forward(await farm.visit(farm.envelope("a", "b", text="[sim:429] hi")))

    env = step.envelope
    assert step.delay_s == 0.0
    # a stays a candidate (its pause ends); b, which can serve now, goes first
    assert (order(env), env.index, env.attempts) == (["b", "a"], 0, 1)
    (failure,) = env.failures
    assert (failure.kind, failure.provider, failure.retry_after) == ("RateLimited", "a", 1.0)
    paused = await farm.peek("a")
    assert paused.reason is Reason.paused
    assert paused.wait_s == pytest.approx(1.0)
    assert (await farm.peek("b")).wait_s == 0.0
    # The provider's pacing is not sickness: the breaker saw a success.
    (breaker,) = await farm.breaker.state([farm.breaker.key("a")], farm.clock.now)
    assert (breaker.consecutive_failures, breaker.failures) == (0, 0)


async def test_a_429_on_the_only_candidate_comes_back_after_the_pause(
    sim: SimServer, http: httpx.AsyncClient
) -> None:
    farm = build(http, [sim_config(sim, "a")])

    step = forward(await farm.visit(farm.envelope("a", text="[sim:429] hi")))

    assert step.delay_s == pytest.approx(1.0)
    assert (order(step.envelope), step.envelope.index) == (["a"], 0)


async def test_a_429_when_no_attempt_remains_is_a_final_429(
    sim: SimServer, http: httpx.AsyncClient
) -> None:
    farm = build(http, [sim_config(sim, "a"), sim_config(sim, "b")])
    last_try = farm.settings.max_attempts - 1

    reply = done(await farm.visit(farm.envelope("a", "b", text="[sim:429]", attempts=last_try)))

    assert reply.error is not None
    assert (reply.error.kind, reply.error.retry_after) == ("CapacityExhausted", 1.0)
    assert reply.attempts == farm.settings.max_attempts


async def test_an_upstream_400_is_final_even_with_candidates_left() -> None:
    calls: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        error = {"message": "messages: bad", "type": "invalid_request_error", "param": None}
        return httpx.Response(400, json={"error": error})

    async with mock_client(refuse) as client:
        configs = [
            provider_config("a", "https://a.example.com/v1"),
            provider_config("c", "https://c.example.com/v1"),
        ]
        farm = build(client, configs)
        reply = done(await farm.visit(farm.envelope("a", "c")))

    assert reply.error is not None
    assert (reply.error.kind, reply.error.upstream_status, reply.error.provider) == (
        "UpstreamBadRequest",
        400,
        "a",
    )
    assert reply.attempts == 1
    assert [r.url.host for r in calls] == ["a.example.com"]
    # The request's fault, not the provider's: no failure on its breaker.
    (breaker,) = await farm.breaker.state([farm.breaker.key("a")], farm.clock.now)
    assert (breaker.calls, breaker.failures) == (1, 0)


async def test_a_refused_key_disables_the_provider(sim: SimServer, http: httpx.AsyncClient) -> None:
    farm = build(
        http, [sim_config(sim, "locked"), sim_config(sim, "a")], keys={"locked": WRONG_KEY}
    )

    step = forward(await farm.visit(farm.envelope("locked", "a")))

    assert step.envelope.index == 1
    (failure,) = step.envelope.failures
    assert (failure.kind, failure.upstream_status) == ("UpstreamAuthError", 401)
    assert WRONG_KEY not in step.envelope.model_dump_json()
    assert await farm.breaker.is_disabled("locked", fingerprint(WRONG_KEY))
    assert not await farm.breaker.is_disabled("locked", fingerprint(KEY))  # a new key would do

    before = upstream_calls(sim, "locked")
    again = forward(await farm.visit(farm.envelope("locked", "a")))
    assert [f.kind for f in again.envelope.failures] == ["UpstreamAuthError"]
    assert "refused Relay's API key" in again.envelope.failures[0].message
    assert upstream_calls(sim, "locked") == before


async def test_every_call_is_reported_to_every_sink(
    sim: SimServer, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    # A failing sink first: it is logged and skipped, and the next one still hears the call.
    farm = build(http, [sim_config(sim, "down"), sim_config(sim, "a")], extra_sinks=(BrokenSink(),))

    with caplog.at_level(logging.WARNING, logger="relay.events"):
        first = forward(await farm.visit(farm.envelope("down", "a")))
        farm.clock.advance(2.0)
        reply = done(await farm.visit(first.envelope))

    assert reply.ok
    failed, served = farm.sink.records
    assert failed == CallRecord(
        provider="down",
        model=MODEL,
        owner="owner-1",
        kind="interactive",
        ok=False,
        error=UpstreamUnavailable,
        latency_s=0.0,
        queue_wait_s=ENQUEUED_AGO_S,
        at=START,
        family="chat",  # the request profiled on its visit (relay_core/profile)
    )
    assert (served.provider, served.ok, served.error) == ("a", True, None)
    assert (served.prompt_tokens, served.completion_tokens) == (2, 4)
    assert served.queue_wait_s == pytest.approx(ENQUEUED_AGO_S + 2.0)
    assert served.at == START + 2.0
    assert caplog.text.count("event sink BrokenSink failed") == 2


async def test_a_bug_while_serving_answers_the_client_at_once_with_a_500() -> None:
    def crash(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("a bug in a transport, nothing httpx knows")

    async with mock_client(crash) as client:
        farm = build(client, [provider_config("a", "https://a.example.com/v1")])
        reply = done(await farm.visit(farm.envelope("a")))
        with pytest.raises(RuntimeError):  # a batch line is swept again instead
            await farm.visit(farm.envelope("a", kind=Kind.batch, batch_id="batch_1"))

    assert reply.error is not None and not reply.ok
    error = RelayError.from_info(reply.error)
    assert (error.status_code, error.error_type, error.code) == (
        500,
        "server_error",
        "internal_error",
    )
    assert "RuntimeError" not in error.message  # the traceback goes to the log only
