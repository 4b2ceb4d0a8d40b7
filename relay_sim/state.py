"""The simulator's running state: per provider and per model, their limits and counters.

One :class:`SimState` per app, built by :func:`relay_sim.app.create_app`; it is only
touched from the server's event loop, so no locks. Memory stays bounded: counters are plain
integers and the limit windows hold at most one entry per request they admit.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields

from relay_core.catalogue.models import ApiFamily
from relay_sim.answer import Answer
from relay_sim.ceiling import Ceiling, Demand, Span, ceiling
from relay_sim.config import SimConfig, SimModel, SimProvider
from relay_sim.faults import FaultKind, SimFault
from relay_sim.headers import rate_headers
from relay_sim.limits import LimitSet

Clock = Callable[[], float]

# Fields whose change rebuilds a provider's limit windows and starts a new run for its ceiling
# (anything else keeps them).
_LIMIT_FIELDS = (
    "rpm",
    "tpm",
    "rpd",
    "tpd",
    "concurrency",
    "window_s",
    "daily_reset",
    "models",
    "hidden_factor",
    "tpm_counting",
)


@dataclass(slots=True)
class Counters:
    requests: int = 0  # every request that named this provider (or model)
    accepted: int = 0  # admitted by the limits (counted against RPM/TPM/RPD)
    succeeded: int = 0  # answered 200 in the family's wire format
    rate_limited: int = 0  # 429
    errors: int = 0  # 5xx
    client_errors: int = 0  # 400, 401, 404
    hung: int = 0  # never answered
    garbage: int = 0  # 200 with a body that is not the wire format
    empty_streams: int = 0  # 200 streams without a single chunk (empty_stream_over_window)
    truncated: int = 0  # 200 whose body stopped half-way
    json_asked: int = 0  # admitted requests that asked for JSON
    invalid_json: int = 0  # of those, answered in prose (invalid_json_first / _rate)
    in_flight: int = 0
    max_in_flight: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def clear(self) -> None:
        in_flight = self.in_flight
        for f in fields(self):
            setattr(self, f.name, 0)
        self.in_flight = self.max_in_flight = in_flight

    def add(self, other: Counters) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


class Ticket:
    """One request in flight on some counters; :meth:`leave` (once) when it is answered, which
    also calls ``on_leave``."""

    __slots__ = ("_counters", "_on_leave")

    def __init__(self, *counters: Counters, on_leave: Callable[[], None] | None = None) -> None:
        for c in counters:
            c.in_flight += 1
            c.max_in_flight = max(c.max_in_flight, c.in_flight)
        self._counters = counters
        self._on_leave = on_leave

    def leave(self) -> None:
        for c in self._counters:
            c.in_flight -= 1
        self._counters = ()
        if self._on_leave is not None:
            self._on_leave()
            self._on_leave = None


@dataclass(slots=True)
class ModelState:
    config: SimModel
    limits: LimitSet
    counters: Counters
    demand: Demand = field(default_factory=Demand)


class ProviderState:
    def __init__(self, config: SimProvider, now: float) -> None:
        self.counters = Counters()
        self.models: dict[str, ModelState] = {}
        self.config = config
        self._rebuild(config, now)

    def _rebuild(self, config: SimProvider, now: float) -> None:
        hidden = config.hidden_factor
        self.limits = LimitSet(config, config.window_s, config.daily_reset, hidden)
        self.demand = Demand()
        old = self.models
        self.models = {
            m.id: ModelState(
                m,
                LimitSet(m, config.window_s, config.daily_reset, hidden),
                old[m.id].counters if m.id in old else Counters(),
            )
            for m in config.models
        }
        self._index = {
            name: s for s in self.models.values() for name in (s.config.id, *s.config.aliases)
        }
        self.flap_origin = now

    def configure(self, config: SimProvider, now: float) -> None:
        """Adopt a new configuration; limit windows restart only if a limit changed."""
        before = self.config.model_dump(include=set(_LIMIT_FIELDS))
        flap_before = self.config.flap_s
        self.config = config
        if config.model_dump(include=set(_LIMIT_FIELDS)) != before:
            self._rebuild(config, now)
        elif config.flap_s != flap_before:
            self.flap_origin = now

    def model(self, name: str) -> ModelState | None:
        return self._index.get(name)

    def is_down(self, now: float) -> bool:
        flap = self.config.flap_s
        if flap is not None and int((now - self.flap_origin) // flap) % 2 == 1:
            return True
        return self.config.outage

    def admit(self, model: ModelState, cost: int, now: float) -> dict[str, str]:
        """Debit one request costing ``cost`` tokens; returns the rate-limit headers.

        Raises a ``rate_limited`` :class:`SimFault` (with those headers) when any limit of the
        provider or the model would be exceeded; then nothing is debited. Either way the
        request counts in the run's demand (:mod:`relay_sim.ceiling`).
        """
        self.demand.seen(self.limits, cost, now)
        model.demand.seen(model.limits, cost, now)
        rejections = [
            r
            for r in (
                self.limits.check(cost, now, self.counters.in_flight + 1),
                model.limits.check(cost, now, model.counters.in_flight + 1),
            )
            if r is not None
        ]
        if rejections:
            worst = max(rejections, key=lambda r: r.retry_after_s)
            raise SimFault(
                FaultKind.rate_limited,
                worst.message(f"model `{model.config.id}` of `{self.config.name}`"),
                retry_after_s=worst.retry_after_s,
                limit=worst.kind,
                headers=self.rate_headers(model, now),
            )
        self.limits.take(cost, now)
        model.limits.take(cost, now)
        return self.rate_headers(model, now)

    def answered(self, model: ModelState, answer: Answer, answer_s: float, now: float) -> None:
        """``answer`` is going out after a planned ``answer_s`` seconds: under ``usage``
        counting, its completion tokens are debited now."""
        if self.config.tpm_counting == "usage":
            self.limits.take_tokens(answer.completion_tokens, now)
            model.limits.take_tokens(answer.completion_tokens, now)
        for demand in (self.demand, model.demand):
            demand.answered(answer.total_tokens, answer_s)

    def ended(self, model: ModelState, now: float) -> None:
        """A request admitted to ``model`` is out (answered, failed or cut off)."""
        self.demand.ended(now)
        model.demand.ended(now)

    def rate_headers(self, model: ModelState, now: float) -> dict[str, str]:
        style = self.config.header_style()
        if style == "none":
            return {}
        snap = model.limits.snapshot(now).over(self.limits.snapshot(now))
        return rate_headers(style, snap, now)

    def reset(self, now: float) -> None:
        self.counters.clear()
        for m in self.models.values():
            m.counters.clear()
        self._rebuild(self.config, now)

    def ceiling(self, now: float) -> tuple[Ceiling, dict[str, Ceiling]]:
        """The run's binding ceiling, the provider's and each model's (over the same span)."""
        demand = self.demand
        start = demand.first_at if demand.first_at is not None else now
        busy = self.counters.in_flight > 0 or demand.last_at is None
        span = Span(start, now if busy else demand.last_at or now)
        usage = self.config.tpm_counting == "usage"
        parts = [(name, m.limits, m.demand) for name, m in self.models.items()]
        models = {name: ceiling(lim, dem, span, usage) for name, lim, dem in parts}
        return ceiling(self.limits, demand, span, usage, parts), models

    def stats(self, now: float) -> dict[str, object]:
        whole, per_model = self.ceiling(now)
        models = {
            name: {**asdict(m.counters), "ceiling": per_model[name].model_dump()}
            for name, m in self.models.items()
        }
        return {
            "api": self.config.api,
            **asdict(self.counters),
            "ceiling": whole.model_dump(),
            "models": models,
        }


class SimState:
    def __init__(self, config: SimConfig, clock: Clock = time.time) -> None:
        self.clock = clock
        self.rng = random.Random(config.seed)
        now = clock()
        self.providers = {p.name: ProviderState(p, now) for p in config.providers}
        # In flight across every provider (the other counters are summed in ``stats``).
        self.flight = Counters()
        # Set when the server stops: releases requests that hang.
        self.closing = asyncio.Event()

    def provider(self, name: str, api: ApiFamily) -> ProviderState | None:
        """The provider ``name`` if it speaks ``api`` (another family's path is a 404)."""
        state = self.providers.get(name)
        return state if state is not None and state.config.api == api else None

    def patch(self, name: str, patch: Mapping[str, object]) -> SimProvider:
        """Change provider ``name``'s behaviour (``KeyError`` if unknown, pydantic's
        ``ValidationError`` if the result is invalid)."""
        state = self.providers[name]
        merged = {**state.config.model_dump(), **patch, "name": name}
        config = SimProvider.model_validate(merged)
        state.configure(config, self.clock())
        return config

    def reset(self) -> None:
        """Zero every counter and empty every limit window."""
        now = self.clock()
        for state in self.providers.values():
            state.reset(now)
        self.flight.clear()

    def stats(self) -> dict[str, object]:
        totals = Counters()
        for state in self.providers.values():
            totals.add(state.counters)
        totals.in_flight = self.flight.in_flight
        totals.max_in_flight = self.flight.max_in_flight
        now = self.clock()
        return {
            "providers": {name: s.stats(now) for name, s in self.providers.items()},
            "totals": asdict(totals),
        }
