"""Hedged streams and empty streamed answers (issue 16, items 2 and 7), against a simulator:
a stream whose first chunk is late is raced by another provider's and the first chunk wins,
the loser cut off; no budget, no hedge; never a paid hedge in free mode; a stream with no
content fails over before anything reached the client, and counts against its provider."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import orjson
import pytest

from relay_core.catalogue.models import ProviderConfig, Tier
from relay_core.dispatch.envelope import Envelope, Reply, RouteFlags
from relay_core.dispatch.executor import Executor
from relay_core.dispatch.hedge import MIN_ANSWERS
from relay_core.dispatch.outcome import Forward
from relay_core.dispatch.stream_hedge import FirstChunkTimes, StreamHedger
from relay_core.dispatch.streaming import PROVIDER, Written, carries_answer
from relay_core.errors import UpstreamUnusableAnswer
from relay_core.routing.outcomes.stats import LATENCY_EDGES, Stats, latency_bucket
from relay_core.schemas.chat import ChatCompletionChunk
from relay_sim import SimConfig, SimServer
from tests.unit.dispatch.support import MODEL, Clock, Farm, build, done, provider_config

SLOW_MS = 3000  # a straggler: far past the learned p95 first chunk (50 ms)
LAG_MS = 300  # late enough to be hedged, soon enough to wait for
KNOWN_TTFT_S = 0.05


def test_the_first_chunk_p95_needs_enough_streams() -> None:
    times = FirstChunkTimes(kept=100)
    for _ in range(int(MIN_ANSWERS) - 1):
        times.add("a/m", "chat", 0.1)
    assert times.p95("a/m", "chat") is None
    for i in range(100):  # the oldest fall out: 0.01 .. 1.00 s
        times.add("a/m", "chat", (i + 1) / 100)
    # The p95 (0.96 s) read as the upper edge of its bucket, as a whole answer's is.
    assert times.p95("a/m", "chat") == LATENCY_EDGES[latency_bucket(0.96)] == 1.6
    assert times.p95("a/m", "coding") is None  # per family


def _chunk(delta: dict[str, object]) -> ChatCompletionChunk:
    return ChatCompletionChunk.model_validate(
        {"id": "c", "model": "m", "choices": [{"index": 0, "delta": delta}]}
    )


def test_a_chunk_of_the_answer_is_text_a_tool_call_or_a_providers_own_field() -> None:
    assert not carries_answer(_chunk({"role": "assistant", "content": ""}))
    assert not carries_answer(_chunk({}))
    assert carries_answer(_chunk({"content": "Hi"}))
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f"}}
    assert carries_answer(_chunk({"role": "assistant", "tool_calls": [call]}))
    assert carries_answer(_chunk({"reasoning_content": "Let me think"}))  # DeepSeek's


class MemorySink:
    def __init__(self, hub: MemoryHub, name: str) -> None:
        self.hub, self.name = hub, name

    async def write(self, data: bytes, head: dict[bytes, bytes] | None = None) -> Written:
        self.hub.chunks.setdefault(self.name, []).append((data, head))
        return Written.ok

    async def left(self) -> None:
        await asyncio.Event().wait()  # this client never leaves


class MemoryHub:
    """The stream hub's fake: what each stream was written, and how it ended."""

    def __init__(self) -> None:
        self.chunks: dict[str, list[tuple[bytes, dict[bytes, bytes] | None]]] = {}
        self.ended: dict[str, Reply] = {}

    def open(self, name: str) -> MemorySink:
        return MemorySink(self, name)

    async def finish(self, name: str, reply: Reply) -> None:
        self.ended[name] = reply

    def text(self, name: str) -> str:
        out = []
        for data, _ in self.chunks.get(name, []):
            for choice in orjson.loads(data)["choices"]:
                out.append(choice["delta"].get("content") or "")
        return "".join(out)


SIM = SimConfig.model_validate(
    {
        "providers": [
            {"name": name, "api": "openai", "models": [{"id": MODEL}], **extra}
            for name, extra in (
                ("slow", {"latency_ms": SLOW_MS}),
                ("lagging", {"latency_ms": LAG_MS}),
                ("quick", {}),
                ("pricey", {}),
                ("hollow", {"quality": {"*": {"empty": 1.0}}}),
            )
        ]
    }
)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer(SIM) as server:
        yield server


class NoLatencies:
    async def stats(self, family: str) -> dict[str, Stats]:
        return {}


def _config(sim: SimServer, name: str) -> ProviderConfig:
    config = provider_config(name, sim.base_url(name))
    return config.model_copy(update={"tier": Tier.paid}) if name == "pricey" else config


def _farm(sim: SimServer, http: httpx.AsyncClient, *names: str) -> tuple[Farm, MemoryHub]:
    """A farm whose executor relays streams into a :class:`MemoryHub` and hedges them,
    every target's first chunk having come in 50 ms 20 times, with one hedge in its budget."""
    farm = build(http, [_config(sim, n) for n in names], clock=Clock(None))
    hub = MemoryHub()
    farm.executor = Executor(
        farm.state, clock=farm.clock, sinks=[farm.sink], streams=hub, latencies=NoLatencies()
    )
    hedger = farm.executor.stream_hedger
    assert isinstance(hedger, StreamHedger)
    for name in names:
        for _ in range(20):
            hedger.times.add(f"{name}/{MODEL}", "chat", KNOWN_TTFT_S)
    hedger.hedger.budget.credit = 1.0
    return farm, hub


def _stream(farm: Farm, *names: str, hedge: bool = True) -> Envelope:
    env = farm.envelope(*names, text="Hi there", flags=RouteFlags(hedge=hedge))
    request = env.request.model_copy(update={"stream": True})
    return env.model_copy(update={"request": request})


def _calls(sim: SimServer, name: str) -> int:
    return sim.state.providers[name].counters.requests


async def test_a_late_first_chunk_is_hedged_and_the_first_chunk_wins(
    sim: SimServer, http: httpx.AsyncClient
) -> None:
    farm, hub = _farm(sim, http, "slow", "quick")
    before = _calls(sim, "slow"), _calls(sim, "quick")

    reply = done(await farm.visit(_stream(farm, "slow", "quick")))

    assert reply.ok and reply.provider == "quick" and reply.hedged
    assert hub.text("env-1") == "sim:quick/m1: Hi there"
    first_head = hub.chunks["env-1"][0][1]
    assert first_head is not None and first_head[PROVIDER] == b"quick"
    assert hub.ended["env-1"].provider == "quick"
    assert (_calls(sim, "slow") - before[0], _calls(sim, "quick") - before[1]) == (1, 1)
    # Only the winner's stream is booked as an answer (the straggler was cut off).
    assert [(r.provider, r.ok) for r in farm.sink.records] == [("quick", True)]
    assert farm.executor.hedger is not None and farm.executor.hedger.budget.spent == 1


async def test_without_budget_or_flag_the_stream_is_not_hedged(
    sim: SimServer, http: httpx.AsyncClient
) -> None:
    farm, _ = _farm(sim, http, "quick", "slow")
    assert farm.executor.stream_hedger is not None
    before = _calls(sim, "slow")
    plain = done(await farm.visit(_stream(farm, "quick", "slow", hedge=False)))
    farm.executor.stream_hedger.hedger.budget.credit = 0.0
    broke = done(await farm.visit(_stream(farm, "quick", "slow")))
    assert (plain.provider, plain.hedged, broke.provider, broke.hedged) == (
        "quick",
        False,
        "quick",
        False,
    )
    assert _calls(sim, "slow") == before


async def test_free_mode_never_hedges_a_stream_to_a_paid_provider(
    sim: SimServer, http: httpx.AsyncClient
) -> None:
    farm, _ = _farm(sim, http, "lagging", "pricey")
    before = _calls(sim, "pricey")
    reply = done(await farm.visit(_stream(farm, "lagging", "pricey")))
    assert reply.provider == "lagging" and not reply.hedged
    assert _calls(sim, "pricey") == before


async def test_an_empty_stream_fails_over_before_anything_reached_the_client(
    sim: SimServer, http: httpx.AsyncClient
) -> None:
    farm, hub = _farm(sim, http, "hollow", "quick")
    outcome = await farm.visit(_stream(farm, "hollow", "quick", hedge=False))

    assert isinstance(outcome, Forward)
    assert hub.chunks == {} and hub.ended == {}  # nothing reached the client
    reply = done(await farm.visit(outcome.envelope))
    assert reply.provider == "quick" and hub.text("env-1") == "sim:quick/m1: Hi there"
    booked = [(r.provider, r.error) for r in farm.sink.records]
    assert booked == [("hollow", UpstreamUnusableAnswer), ("quick", None)]


async def test_the_last_candidates_empty_stream_is_relayed_and_counted_against_it(
    sim: SimServer, http: httpx.AsyncClient
) -> None:
    farm, hub = _farm(sim, http, "hollow")
    reply = done(await farm.visit(_stream(farm, "hollow", hedge=False)))

    assert reply.ok and reply.provider == "hollow"
    assert hub.text("env-1") == "" and hub.chunks["env-1"]  # its role and finish chunks
    assert hub.ended["env-1"].provider == "hollow"
    assert [(r.provider, r.error) for r in farm.sink.records] == [
        ("hollow", UpstreamUnusableAnswer)
    ]
