"""A batch line's run resumed from its last recorded visit, on a real Redis (no workers: the
runner's own steps, as a worker takes them): a worker that recorded a step and died before
sending the next call leaves nothing in flight; the line sent again sends that call, and a
copy of a call that was in flight after all is dropped, so every step is recorded once."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import pytest
from redis.asyncio import Redis

from relay_core.breaker import Breaker
from relay_core.breaker import RedisBackend as BreakerRedis
from relay_core.catalogue.models import ModelConfig, ProviderConfig
from relay_core.dispatch.envelope import Envelope, Reply
from relay_core.limits import Limiter, RedisBackend
from relay_core.schemas.chat import ChatCompletion
from relay_core.settings import Settings
from relay_core.workflow.feed import line_run_id
from relay_core.workflow.models import Workflow
from relay_core.workflow.route import StepRouter
from relay_core.workflow.run import LineRef, RunRecord, RunStatus, StepVisit
from relay_core.workflow.runner import WorkflowRunner
from relay_core.workflow.store import RunStore
from tests.support.workflows import SUPPORT_PATH, support_workflow

pytestmark = pytest.mark.integration

PROVIDER = ProviderConfig(
    name="p",
    api="openai",
    base_url="http://sim.invalid/v1",
    models=[ModelConfig(id="m", aliases=["chat"])],
)
BATCH = "batch_" + "0" * 24


@dataclass
class Lines:
    """Where ended runs go (a batch's record keeps one per line; this list, every one)."""

    runs: list[RunRecord] = field(default_factory=list)

    async def ended(self, run: RunRecord, visits: Sequence[StepVisit]) -> None:
        self.runs.append(run)


@pytest.fixture
async def runner() -> AsyncIterator[tuple[WorkflowRunner, Lines]]:
    settings = Settings(key_prefix=f"rt{uuid.uuid4().hex[:10]}")
    client = Redis.from_url("redis://127.0.0.1:6379/0")
    router = StepRouter(
        settings,
        [PROVIDER],
        Limiter.from_settings(settings, RedisBackend(client)),
        Breaker.from_settings(settings, BreakerRedis(client)),
    )
    lines = Lines()
    try:
        yield WorkflowRunner(RunStore(client, settings.key_prefix, 60), router, lines), lines
    finally:
        keys = [k async for k in client.scan_iter(match=f"{settings.key_prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def answer(env: Envelope) -> Reply:
    """The simulator's way: a JSON call echoes its prompt as ``{"answer": ...}``."""
    prompt = str(env.chat.messages[-1].content)
    text = f'{{"answer": "sim: {prompt}"}}' if env.chat.response_format else f"sim: {prompt}"
    completion = ChatCompletion.model_validate(
        {
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
        }
    )
    return Reply(id=env.id, ok=True, completion=completion, provider="p", model="m", attempts=1)


def line_run(index: int) -> RunRecord:
    now = time.time()
    return RunRecord(
        id=line_run_id(BATCH, index),
        workflow=Workflow.model_validate(support_workflow()),
        owner="o",
        input={"question": "a billing question"},
        created_at=now,
        kind="batch",
        deadline=now + 600,
        line=LineRef(batch_id=BATCH, index=index, custom_id=f"q{index}"),
    )


async def test_a_run_whose_next_call_was_never_sent_resumes_from_its_last_step(
    runner: tuple[WorkflowRunner, Lines],
) -> None:
    wf, lines = runner
    run = line_run(3)
    assert await wf.store.create(run)
    first = await wf.start(run)
    assert first is not None and first.id == f"{BATCH}:3:w0" and first.batch_id == BATCH
    # The worker records the first step and dies before sending the next call: lost.
    lost = await wf.answered(first, answer(first))
    assert lost is not None and lost.workflow is not None
    # The line is sent again: its run resumes with that very call.
    again = await wf.resume(run)
    assert again is not None and again.workflow is not None
    assert (again.id, again.workflow.step, again.workflow.index) == (
        lost.id,
        lost.workflow.step,
        lost.workflow.index,
    )
    # Nothing else was lost meanwhile: resuming again sends the same call, no step twice.
    twice = await wf.resume(run)
    assert twice is not None and twice.id == again.id
    # Both copies are answered: the first recorded moves the run on, the other is dropped.
    nxt = await wf.answered(again, answer(again))
    assert await wf.answered(twice, answer(twice)) is None
    assert await wf.answered(first, answer(first)) is None  # a redelivery of the first step
    while nxt is not None:
        nxt = await wf.answered(nxt, answer(nxt))
    ended = await wf.store.run(run.id)
    assert ended is not None and ended.status is RunStatus.completed
    visits = await wf.store.visits(run.id)
    assert [v.step for v in visits] == SUPPORT_PATH["billing"]
    assert [v.index for v in visits] == list(range(len(visits)))
    assert [r.status for r in lines.runs] == [RunStatus.completed]
    # An ended run sent again writes its line again (the batch keeps the first), sends nothing.
    assert await wf.resume(ended) is None
    assert [r.status for r in lines.runs] == [RunStatus.completed] * 2
    assert len(await wf.store.visits(run.id)) == len(visits)
