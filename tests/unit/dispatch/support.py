"""The executor without Celery: a :class:`WorkerState` on the in-memory limit and breaker
backends, real provider clients, a clock the test moves, and a sink that keeps what it hears.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from relay_core.breaker import Breaker, fingerprint
from relay_core.breaker import MemoryBackend as BreakerMemory
from relay_core.catalogue.models import ApiFamily, Limits, ModelConfig, ProviderConfig
from relay_core.dispatch.envelope import Candidate, Envelope, Kind, Reply
from relay_core.dispatch.executor import Executor
from relay_core.dispatch.outcome import Done, Forward, Outcome
from relay_core.dispatch.state import LiveTarget, WorkerState
from relay_core.events import CallRecord
from relay_core.limits import Capacity, Limiter, MemoryBackend
from relay_core.providers.base import Provider
from relay_core.providers.registry import build_provider
from relay_core.settings import Settings
from relay_sim import SimServer
from tests.unit.limits._support import START

MODEL = "m1"
KEY = "sk-dispatch-0f1e2d3c4b5a6978"
ENQUEUED_AGO_S = 0.25

# Deterministic by default: no waiting in place (with a clock the test moves, a wait could
# only end by the test moving it), so every refusal comes back as an outcome.
SETTINGS: Mapping[str, Any] = {
    "token_wait_max_s": 0.0,
    "max_queue_wait_s": 30.0,
    "requeue_delay_max_s": 5.0,
    "max_attempts": 6,
    "breaker_failures": 2,
    "breaker_cooldown_s": 10.0,
}


class Clock:
    """The executor's clock: fixed where the test says (``advance`` moves it), or, made with
    ``None``, the wall clock."""

    def __init__(self, start: float | None = START) -> None:
        self._fixed = start

    @property
    def now(self) -> float:
        return time.time() if self._fixed is None else self._fixed

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        assert self._fixed is not None, "the wall clock moves by itself"
        self._fixed += seconds


class RecordingSink:
    def __init__(self) -> None:
        self.records: list[CallRecord] = []

    async def call_finished(self, record: CallRecord) -> None:
        self.records.append(record)


class BrokenSink:
    async def call_finished(self, record: CallRecord) -> None:
        raise RuntimeError("the metrics backend is down")


def provider_config(
    name: str,
    base_url: str,
    api: ApiFamily = "openai",
    *,
    limits: Limits | None = None,
    timeout_s: float = 5.0,
) -> ProviderConfig:
    return ProviderConfig(
        name=name,
        api=api,
        base_url=base_url,
        timeout_s=timeout_s,
        limits=limits or Limits(),
        models=[ModelConfig(id=MODEL, max_output_tokens=64)],
    )


def sim_config(sim: SimServer, name: str, limits: Limits | None = None) -> ProviderConfig:
    """Simulated provider ``name`` (see conftest; ``b`` speaks Anthropic's format)."""
    api: ApiFamily = "anthropic" if name == "b" else "openai"
    return provider_config(name, sim.base_url(name), api, limits=limits)


@dataclass
class Farm:
    """One worker's executor and everything behind it."""

    providers: dict[str, Provider]
    keys: dict[str, str | None]
    clock: Clock = field(default_factory=Clock)
    sink: RecordingSink = field(default_factory=RecordingSink)
    settings: Settings = field(default_factory=lambda: Settings(**SETTINGS))
    extra_sinks: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        self.limiter = Limiter(MemoryBackend(), self.settings.key("limits"))
        self.breaker = Breaker.from_settings(self.settings, BreakerMemory())
        fingerprints = {name: fingerprint(key or "") for name, key in self.keys.items()}
        self.state = WorkerState(
            self.settings, self.providers, self.limiter, self.breaker, fingerprints
        )
        sinks = [*self.extra_sinks, self.sink]
        self.executor = Executor(self.state, clock=self.clock, sinks=sinks)

    def target(self, provider: str) -> LiveTarget:
        target = self.state.target(Candidate(provider=provider, model=MODEL))
        assert target is not None
        return target

    async def drain(self, provider: str) -> None:
        """Spend ``provider``'s request bucket (as another request would)."""
        plan = self.state.plan(self.target(provider), self.clock.now)
        decision = await self.limiter.acquire(plan, 1, "someone-else", self.clock.now)
        assert decision.granted

    async def peek(self, provider: str) -> Capacity:
        return await self.limiter.peek(
            self.state.plan(self.target(provider), self.clock.now), self.clock.now
        )

    async def visit(self, env: Envelope) -> Outcome:
        """Visit ``env``, then wait for the bookkeeping the executor leaves running after it."""
        outcome = await self.executor.visit(env)
        drain = getattr(self.executor, "drain", None)  # bookkeeping may outlive the visit
        if drain is not None:
            await drain()
        return outcome

    def envelope(
        self,
        *providers: str,
        text: str = "Hello",
        kind: Kind = Kind.interactive,
        deadline_in_s: float = 60.0,
        **fields: Any,
    ) -> Envelope:
        return Envelope(
            id="env-1",
            request={"model": "chat", "messages": [{"role": "user", "content": text}]},
            candidates=[Candidate(provider=p, model=MODEL) for p in providers],
            kind=kind,
            deadline=self.clock.now + deadline_in_s,
            enqueued_at=self.clock.now - ENQUEUED_AGO_S,
            owner="owner-1",
            **fields,
        )


def build(
    http: httpx.AsyncClient,
    configs: list[ProviderConfig],
    keys: Mapping[str, str | None] | None = None,
    **kwargs: Any,
) -> Farm:
    """A farm of ``configs``, each client sending ``keys[name]`` (default :data:`KEY`)."""
    chosen = {c.name: (keys or {}).get(c.name, KEY) for c in configs}
    providers = {c.name: build_provider(c, http, chosen[c.name]) for c in configs}
    return Farm(providers, chosen, **kwargs)


def answer(reply: Reply) -> dict[str, Any]:
    """A reply's completion as the API answers it."""
    assert reply.completion is not None, reply
    return reply.completion.model_dump(mode="json", exclude_none=True)


def done(outcome: Outcome) -> Reply:
    assert isinstance(outcome, Done), outcome
    return outcome.reply


def forward(outcome: Outcome) -> Forward:
    assert isinstance(outcome, Forward), outcome
    return outcome


def order(env: Envelope) -> list[str]:
    return [c.provider for c in env.candidates]


def mock_client(respond: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(respond))


def upstream_calls(sim: SimServer, provider: str) -> int:
    """Requests the simulated ``provider`` has received so far."""
    return sim.state.providers[provider].counters.requests
