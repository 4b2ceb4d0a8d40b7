"""The full audit of one chat request's route, for ``GET /v1/requests/{id}/route``.

Built by the API after the answer (off the response's path) from what the routing step
kept and the worker's reply, and written to Redis in one ``SET`` with a TTL
(``RELAY_ROUTE_AUDIT_TTL_S``) under ``{prefix}:route:{request id}``. Only its owner reads it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import orjson
from pydantic import BaseModel, TypeAdapter
from redis.asyncio import Redis

from relay_core.errors import ErrorInfo, RelayError
from relay_core.policy.apply import gate
from relay_core.policy.ruling import Ruling
from relay_core.profile.models import Profile
from relay_core.routing.ranking import IDLE, LiveState, Ranked
from relay_core.routing.targets import Target
from relay_core.settings import Mode

MESSAGE_CHARS = 300  # an error message is cut to this in the audit


@dataclass(slots=True)
class CandidateAudit:
    target: str
    tier: str
    gate: str  # "able", "breaker open", "no capacity for 1.20 s", or why a policy kept it out
    rank: int | None = None  # its place in the order tried (1 first), None when kept out
    headroom: float | None = None
    load: float | None = None
    success: float | None = None
    latency: float | None = None
    score: float | None = None


@dataclass(slots=True)
class AttemptAudit:
    target: str
    result: str  # "answered" or the error's code
    error: str | None = None  # the error's class
    message: str | None = None
    upstream_status: int | None = None


@dataclass(slots=True)
class RouteAudit:
    """Dataclasses, not pydantic models: one is built for every chat request, and orjson
    writes these in a few microseconds; reading one back validates it (:data:`READ`)."""

    id: str
    owner: str
    model: str  # as requested
    profile: Profile
    mode: Mode
    at: float = field(default_factory=time.time)
    stream: bool = False
    policies: list[str] = field(default_factory=list)  # the rules that fired, in order
    caps: dict[str, float] = field(default_factory=dict)  # what the policies capped
    candidates: list[CandidateAudit] = field(default_factory=list)
    explored: bool = False
    escalated: bool = False
    chosen: str | None = None  # the first candidate sent to
    attempts: list[AttemptAudit] = field(default_factory=list)  # each upstream try, in order
    served_by: str | None = None
    error: str | None = None  # the final error's code when no answer was given
    note: str = ""  # the x-relay-route header


READ: TypeAdapter[RouteAudit] = TypeAdapter(RouteAudit)


def _model(value: object) -> object:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(type(value).__name__)


def encode(audit: RouteAudit) -> bytes:
    return orjson.dumps(audit, default=_model)


@dataclass(frozen=True, slots=True)
class Decided:
    """What the routing step decided, as the audit reads it."""

    considered: Sequence[Target]
    ranked: Sequence[Target]
    live: Mapping[str, LiveState]
    route: Ranked | None
    ruling: Ruling
    mode: Mode


def _gate_of(t: Target, key: str, decided: Decided) -> str:
    if decided.ruling.fired or decided.mode is Mode.free:
        kept_out = gate(decided.ruling, t, decided.mode)
        if kept_out is not None:
            return kept_out
    s = decided.live.get(key, IDLE)
    if s.breaker_open:
        return "breaker open"
    return f"no capacity for {s.wait_s:.2f} s" if s.wait_s > 0 else "able"


def candidates(decided: Decided) -> list[CandidateAudit]:
    """Each candidate considered, with its gate, place and score terms (as computed: the
    figures are not rounded, which would cost more than writing them)."""
    order = {t.key: i + 1 for i, t in enumerate(decided.ranked)}
    terms = decided.route.terms if decided.route is not None else {}
    out = []
    for t in decided.considered:
        key = t.key
        row = CandidateAudit(key, t.provider.tier.value, _gate_of(t, key, decided), order.get(key))
        live = decided.live.get(key)
        if live is not None:
            row.headroom = live.headroom
        term = terms.get(key)
        if term is not None:
            row.load, row.success, row.latency = term.load, term.success, term.latency
            row.score = term.score
        out.append(row)
    return out


def attempt(info: ErrorInfo) -> AttemptAudit:
    target = f"{info.provider}/{info.model}" if info.provider else "-"
    return AttemptAudit(
        target=target,
        result=info.error_class.code or "error",
        error=info.kind,
        message=info.message[:MESSAGE_CHARS],
        upstream_status=info.upstream_status,
    )


def attempts(
    failures: Sequence[ErrorInfo], served_by: str | None, final: ErrorInfo | None
) -> list[AttemptAudit]:
    """Every try: the failures the worker kept, then the answer (or the final error, when
    it is not the last failure again)."""
    out = [attempt(f) for f in failures]
    if served_by is not None:
        out.append(AttemptAudit(target=served_by, result="answered"))
    elif final is not None and final.provider and (not failures or failures[-1] != final):
        out.append(attempt(final))
    return out


def final_code(error: ErrorInfo | RelayError | None) -> str | None:
    if error is None:
        return None
    cls = error.error_class if isinstance(error, ErrorInfo) else type(error)
    return cls.code or cls.__name__


class AuditStore:
    def __init__(self, redis: Redis, prefix: str, ttl_s: int) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl_s = ttl_s

    def key(self, request_id: str) -> str:
        return f"{self.prefix}:route:{request_id}"

    async def write(self, audit: RouteAudit) -> None:
        if self.ttl_s > 0:
            await self.redis.set(self.key(audit.id), encode(audit), ex=self.ttl_s)

    async def read(self, request_id: str, owner: str) -> RouteAudit | None:
        """The audit of ``request_id`` if ``owner`` made it (None otherwise, or expired)."""
        raw = await self.redis.get(self.key(request_id))
        if raw is None:
            return None
        audit = READ.validate_json(raw)
        return audit if audit.owner == owner else None
