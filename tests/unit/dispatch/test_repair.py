"""The repair loop in the executor: an answer that is not the JSON asked for is asked for
again on the same candidate with the validator's words, then fails over (docs/answers.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson

from relay_core.answers.repair import CheckAction
from relay_core.dispatch.envelope import Envelope
from relay_core.errors import NoValidAnswer
from relay_core.settings import Settings
from tests.unit.dispatch.support import (
    SETTINGS,
    Farm,
    build,
    done,
    forward,
    mock_client,
    provider_config,
)

SCHEMA = {
    "type": "object",
    "properties": {"n": {"type": "integer"}},
    "required": ["n"],
}
FORMAT = {"type": "json_schema", "json_schema": {"name": "num", "schema": SCHEMA}}


def upstream(answers: dict[str, list[str]]) -> tuple[Callable[..., Any], list[dict[str, Any]]]:
    """Providers answering, call after call, the texts in ``answers[host]`` (the last one
    again once they run out); every request body kept."""
    seen: list[dict[str, Any]] = []

    def respond(request: httpx.Request) -> httpx.Response:
        body = orjson.loads(request.content)
        seen.append({"host": request.url.host, **body})
        texts = answers[request.url.host]
        text = texts.pop(0) if len(texts) > 1 else texts[0]
        return httpx.Response(
            200,
            json={
                "id": "chatcmpl-x",
                "object": "chat.completion",
                "created": 1,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6},
            },
        )

    return respond, seen


def farm_of(respond: Callable[..., Any], repairs: int = 2) -> Farm:
    configs = [provider_config(n, f"http://{n}.test/v1") for n in ("a", "c")]
    settings = Settings(**{**SETTINGS, "repair_max_attempts": repairs})
    return build(mock_client(respond), configs, settings=settings)


def asking_json(farm: Farm) -> Envelope:
    env = farm.envelope("a", "c", text="a number")
    request = env.request.model_copy(update={"response_format": FORMAT})
    return env.model_copy(update={"request": request})


async def test_an_invalid_answer_is_repaired_on_the_same_candidate() -> None:
    respond, seen = upstream({"a.test": ["Sure! It is 4.", '{"n": 4}'], "c.test": ['{"n": 9}']})
    farm = farm_of(respond)

    again = forward(await farm.visit(asking_json(farm)))
    assert again.envelope.current.provider == "a"  # the same candidate, asked again
    reply = done(await farm.visit(again.envelope))

    assert reply.ok and reply.completion is not None
    assert reply.completion.choices[0].message.content == '{"n": 4}'
    assert [(c.provider, c.attempt, c.action) for c in reply.checks] == [
        ("a", 1, CheckAction.repair),
        ("a", 2, CheckAction.delivered),
    ]
    assert "not JSON" in (reply.checks[0].error or "")
    # The re-ask carried the invalid answer and what is wrong with it, and the schema.
    repair_messages = seen[1]["messages"][-2:]
    assert repair_messages[0] == {"role": "assistant", "content": "Sure! It is 4."}
    assert "not JSON" in repair_messages[1]["content"]
    assert '"required":["n"]' in repair_messages[1]["content"]
    assert len(seen[0]["messages"]) == 1


async def test_spent_repairs_fail_over_with_the_clients_own_conversation() -> None:
    respond, seen = upstream({"a.test": ["prose"], "c.test": ['{"n": 9}']})
    farm = farm_of(respond, repairs=1)

    outcome = forward(await farm.visit(asking_json(farm)))
    outcome = forward(await farm.visit(outcome.envelope))  # the repair, prose again
    assert outcome.envelope.current.provider == "c" and outcome.envelope.repair is None
    reply = done(await farm.visit(outcome.envelope))

    assert reply.provider == "c"
    assert [c.action for c in reply.checks] == [
        CheckAction.repair,
        CheckAction.failover,
        CheckAction.delivered,
    ]
    assert [s["host"] for s in seen] == ["a.test", "a.test", "c.test"]
    assert len(seen[2]["messages"]) == 1  # c never saw a's answer


async def test_no_valid_answer_anywhere_is_a_502_with_the_audit() -> None:
    respond, _ = upstream({"a.test": ['{"m": 1}'], "c.test": ["[1]"]})
    farm = farm_of(respond, repairs=0)

    outcome = forward(await farm.visit(asking_json(farm)))
    reply = done(await farm.visit(outcome.envelope))

    assert not reply.ok and reply.error is not None
    assert reply.error.is_a(NoValidAnswer)
    assert [(c.provider, c.valid) for c in reply.checks] == [("a", False), ("c", False)]
    assert "'n' is a required property" in reply.error.message
