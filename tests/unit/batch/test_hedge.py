"""When a batch line's visit counts as far overdue, and what its copy looks like."""

from __future__ import annotations

import fakeredis.aioredis
import pytest

from relay_core.batch.run.feeder import line_index
from relay_core.batch.run.hedge import MIN_SAMPLES, Hedger, copy_of, is_copy
from relay_core.dispatch.capacity import Recent
from relay_core.dispatch.envelope import Candidate, Envelope, Kind
from relay_core.schemas.chat import ChatCompletionRequest


def line(task_id: str = "batch_x:7:ab12cd34") -> Envelope:
    return Envelope(
        id=task_id,
        request=ChatCompletionRequest.model_validate(
            {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
        ),
        candidates=[Candidate(provider="a", model="a-m"), Candidate(provider="b", model="b-m")],
        kind=Kind.batch,
        deadline=2e9,
        batch_id="batch_x",
        custom_id="q7",
    )


def hedger(answers: Recent, factor: float = 1.5, min_s: float = 1.0) -> Hedger:
    return Hedger(fakeredis.aioredis.FakeRedis(), "t", answers, factor, min_s)


def test_no_hedge_before_enough_answers_then_after_factor_times_p99() -> None:
    answers = Recent()
    for _ in range(MIN_SAMPLES - 1):
        answers.add("a", 2.0)
    assert hedger(answers).after_s(line()) is None
    answers.add("a", 4.0)
    assert hedger(answers).after_s(line()) == pytest.approx(6.0)  # 1.5 x the p99, 4 s
    assert hedger(answers, min_s=10.0).after_s(line()) == 10.0  # never sooner than the floor
    assert hedger(answers, factor=0).after_s(line()) is None  # off


def test_a_copy_goes_to_the_next_candidate_and_is_never_hedged_again() -> None:
    env = line()
    twin = copy_of(env)
    assert twin.current.provider == "b"
    assert line_index(twin.id) == 7 and twin.custom_id == "q7" and twin.id != env.id
    assert is_copy(twin.id) and not is_copy(env.id)
    answers = Recent()
    for _ in range(MIN_SAMPLES):
        answers.add("b", 1.0)
    assert hedger(answers).after_s(twin) is None


async def test_sending_a_copy_queues_it_and_counts_it() -> None:
    h = hedger(Recent())
    await h.send(line())
    await h.discarded("batch_x")
    queued = await h.redis.lrange("t.b", 0, -1)
    assert len(queued) == 1 and b"batch_x:7:h" in queued[0]
    assert await h.redis.hgetall("t:batch:batch_x") == {b"hedged": b"1", b"discarded": b"1"}
