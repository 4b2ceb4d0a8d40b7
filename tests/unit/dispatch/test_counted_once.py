"""A request is counted once: the envelope carries each message's estimate to every visit and
candidate (a 5 MB batch line was counted on every visit, on the worker's event loop)."""

from __future__ import annotations

import httpx

from relay_core.context.count import count_each
from relay_core.dispatch.envelope import Kind
from relay_core.schemas.chat import Message
from relay_sim import SimServer
from tests.unit.dispatch.support import (
    answer,
    build,
    done,
    forward,
    mock_client,
    provider_config,
    sim_config,
    upstream_calls,
)


async def test_a_line_is_counted_on_its_first_visit_and_the_count_travels(
    sim: SimServer, http: httpx.AsyncClient
) -> None:
    farm = build(http, [sim_config(sim, "down"), sim_config(sim, "a")])
    env = farm.envelope("down", "a", kind=Kind.batch, batch_id="batch_1", text="count me")
    assert env.message_tokens is None
    moved = forward(await farm.visit(env)).envelope  # "down" answers 503: on to "a"
    assert moved.message_tokens == count_each([Message(role="user", content="count me")])


async def test_the_carried_count_is_what_the_worker_fits_by(
    sim: SimServer, http: httpx.AsyncClient
) -> None:
    farm = build(http, [sim_config(sim, "a")])
    before = upstream_calls(sim, "a")
    # The API counted this one message as a million tokens: the worker believes the carried
    # count (it does not count again), so nothing fits the 8,192-token window.
    env = farm.envelope("a", text="short", message_tokens=[1_000_000])
    reply = done(await farm.visit(env))
    assert reply.error is not None
    assert "about 1000003 prompt tokens" in reply.error.message  # 1,000,000 + overheads
    assert upstream_calls(sim, "a") == before
    # With the true count it goes through.
    ok = done(await farm.visit(farm.envelope("a", text="short", message_tokens=[5])))
    assert ok.ok


async def test_an_answer_without_usage_gets_a_marked_capped_estimate() -> None:
    def no_usage(request: httpx.Request) -> httpx.Response:
        answer = {"role": "assistant", "content": "one two three four five six seven eight"}
        body = {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": "m1",
            "choices": [{"index": 0, "message": answer, "finish_reason": "length"}],
        }
        return httpx.Response(200, json=body)

    async with mock_client(no_usage) as client:
        farm = build(client, [provider_config("a", "https://a.example.com/v1")])
        env = farm.envelope("a", text="hi", message_tokens=[9])
        env.chat.max_tokens = 5
        reply = done(await farm.visit(env))

    assert reply.ok and reply.completion is not None
    usage = answer(reply)["usage"]
    assert usage == {
        "prompt_tokens": 3 + 9,
        "completion_tokens": 5,  # eight words, capped at max_tokens
        "total_tokens": 17,
        "estimated": True,
    }
    assert farm.sink.records[-1].usage_estimated
