"""The feeder: sends a running batch's lines to the provider queues at the pooled pace.

Any number of workers run it at once: the ``claim`` script hands each line to exactly one of
them, paces the whole batch (a bucket refilled at the pooled rate of its healthy targets) and
bounds the lines in flight (the rate times ``RELAY_BATCH_WINDOW_S``), each provider to its own
share (``planner.provider_shares``: a hung provider holds its share, the others are fed), so
the queues never hold a backlog that interactive requests would wait behind. Each line becomes an
:class:`~relay_core.dispatch.envelope.Envelope` of kind ``batch`` whose task id names the batch
and the line (``{batch_id}:{index}:{nonce}``); a line sent again (overdue, or held by a worker
found dead: :mod:`relay_core.batch.run.orphans`) gets a new nonce.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError
from redis.asyncio import Redis

from relay_core.batch.lines import LineRef, request_body
from relay_core.batch.models import Endpoint
from relay_core.batch.run.allowance import Allowance
from relay_core.batch.run.outputs import dropped
from relay_core.batch.run.planner import (
    OVERFEED,
    Assigner,
    Pace,
    candidates,
    healthy,
    provider_shares,
    target_rates,
)
from relay_core.batch.run.readahead import ReadAhead
from relay_core.batch.store.keys import file_key
from relay_core.batch.store.record import BatchRecord
from relay_core.batch.store.store import BatchStore
from relay_core.dispatch.envelope import Envelope, Kind, RouteFlags, queue_name
from relay_core.dispatch.publish import task_message
from relay_core.errors import PolicyRefused, RelayError
from relay_core.policy.apply import admit, capped, preferred_only
from relay_core.policy.models import Policy
from relay_core.policy.ruling import NOTHING, Facts, Ruling, decide
from relay_core.profile import profile_request
from relay_core.routing.embedding import with_dimensions
from relay_core.routing.ranking import LiveState
from relay_core.routing.targets import Selection, Target
from relay_core.schemas.chat import ChatCompletionRequest
from relay_core.schemas.embeddings import EmbeddingRequest
from relay_core.settings import Mode
from relay_core.storage.base import ObjectStorage
from relay_core.workflow.feed import RunLines
from relay_core.workflow.models import Workflow

MAX_CLAIM = 500

# (route) -> the targets that may serve it, raising like resolve_targets when none do.
ResolveRoute = Callable[[Selection], list[Target]]


def line_task_id(batch_id: str, index: int) -> str:
    return f"{batch_id}:{index}:{secrets.token_hex(4)}"


def line_index(task_id: str) -> int:
    return int(task_id.rsplit(":", 2)[1])


def line_of(task_id: str) -> tuple[str, int] | None:
    """The batch id and line index a task id names (None: not a batch line's)."""
    parts = task_id.split(":")
    if len(parts) != 3 or not parts[0].startswith("batch_") or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1])


async def read_bodies(
    store: BatchStore, lines: ReadAhead, name: str, refs: Sequence[LineRef]
) -> list[bytes | None]:
    """Each line's bytes from the input file, read ahead a block at a time (None for all
    when the file is gone: deleted through the API, its record first, or from storage)."""
    try:
        if not await store.redis.exists(file_key(store.prefix, name)):
            raise FileNotFoundError(name)
        found = await lines.read(name, [(ref.offset, ref.length) for ref in refs])
    except FileNotFoundError:
        lines.forget(name)
        return [None] * len(refs)
    return list(found)


async def publish_all(redis: Redis, prefix: str, envelopes: Sequence[Envelope]) -> None:
    """Queue each envelope on its first candidate's provider queue, in one round trip."""
    async with redis.pipeline(transaction=False) as pipe:
        for env in envelopes:
            queue = queue_name(prefix, env.current.provider)
            pipe.lpush(queue, task_message(env, queue))
        await pipe.execute()


def embedding_line(body: dict[str, Any], route: list[Target]) -> EmbeddingRequest:
    """An embeddings line's request, its vectors' length made explicit (the named model's,
    first in its route: relay_core/routing/embedding.py)."""
    request = EmbeddingRequest.model_validate(body)
    wanted = request.dimensions or route[0].model.dimensions
    return request if wanted is None else with_dimensions(request, wanted)


@dataclass
class Plan:
    """One tick's view of a batch: its routes' targets, which are healthy, at what rates."""

    routes: list[list[Target]]
    able: list[list[Target]]
    rates: dict[str, float]
    pooled: float
    # The pooled rate with the part the workers' limiter enforces (every binding limit but
    # a spread daily cap) raised by OVERFEED: what the feeder claims lines at.
    feedable: float = 0.0


@dataclass
class Room:
    """What a claim left each provider of its share of the window, as lines are assigned."""

    left: dict[str, int]  # lines it may still take (below 0: over its share)
    swamped: set[str]  # providers holding twice their share: no candidate of new lines

    @classmethod
    def of(cls, room: Mapping[str, int], shares: Mapping[str, int]) -> Room:
        swamped = {p for p, share in shares.items() if room.get(p, 0) <= -share}
        return cls(dict(room), swamped)


@dataclass
class Feeder:
    store: BatchStore
    storage: ObjectStorage
    line_timeout_s: float
    resolve: ResolveRoute
    # The catalogue's routing policies, applied to each line as the API applies them to a
    # chat request (no header matches: a line has none), in the farm's tier mode.
    policies: Sequence[Policy] = ()
    mode: Mode = Mode.free
    # Starts the runs of a workflow batch's lines (relay_core/workflow/feed.py; None: the
    # worker runs no workflows).
    runs: RunLines | None = None
    _routes: dict[str, list[list[Target]]] = field(default_factory=dict)
    _assigners: dict[tuple[str, int], Assigner] = field(default_factory=dict)
    _inputs: dict[str, str] = field(default_factory=dict)  # batch id -> its input file's name
    lines: ReadAhead = field(init=False)

    def __post_init__(self) -> None:
        self.lines = ReadAhead(self.storage)

    async def routes(self, batch_id: str) -> list[list[Target]]:
        if batch_id not in self._routes:
            raws = await self.store.redis.lrange(self.store.keys(batch_id).routes, 0, -1)
            self._routes[batch_id] = [self._targets(Selection.decode(r)) for r in raws]
        return self._routes[batch_id]

    def _targets(self, route: Selection) -> list[Target]:
        """The route's targets now; none when no enabled provider serves it any more (the
        catalogue changed since validation): its lines then fail as ``model_not_found``."""
        try:
            return self.resolve(route)
        except RelayError:
            return []

    def forget(self, batch_id: str) -> None:
        self._routes.pop(batch_id, None)
        name = self._inputs.pop(batch_id, None)
        if name is not None:
            self.lines.forget(name)
        for key in [k for k in self._assigners if k[0] == batch_id]:
            del self._assigners[key]

    def plan(
        self,
        routes: list[list[Target]],
        live: dict[str, LiveState],
        served: set[str] | None,
        allowed: Mapping[str, Allowance] | None = None,
    ) -> Plan:
        """``allowed``: each target's lines/s under all its limits (``allowance``); without
        it, the request rates alone."""
        union = list({t.key: t for r in routes for t in r}.values())
        rates = target_rates(union)
        for key, allowance in (allowed or {}).items():
            if key in rates:
                rates[key] = min(rates[key], allowance.rate)
        able_keys = {t.key for t in healthy(union, live, served)}
        able = [[t for t in r if t.key in able_keys] for r in routes]
        spread = {k for k, a in (allowed or {}).items() if a.binding.daily}
        feedable = sum(rates[k] * (1.0 if k in spread else OVERFEED) for k in able_keys)
        return Plan(routes, able, rates, sum(rates[k] for k in able_keys), feedable)

    async def feed(self, batch: BatchRecord, plan: Plan, pace: Pace) -> int:
        """Claim and send the next lines this tick allows; how many were sent."""
        now = time.time()
        able = [t for r in plan.able for t in r] or [t for r in plan.routes for t in r]
        shares = provider_shares(pace, able, plan.rates, batch.answer_s)
        claimed = await self.store.claim(
            batch.id,
            now=now,
            rate=pace.feed or pace.rate,
            burst=pace.burst,
            window=pace.window,
            max_n=MAX_CLAIM,
            due=now + self.line_timeout_s,
            shares=shares,
        )
        if claimed.count == 0:
            return 0
        first = claimed.first
        refs = await self.store.refs(batch.id, range(first, first + claimed.count))
        await self.send(batch, plan, refs, Room.of(claimed.room, shares))
        return claimed.count

    async def resend_stale(self, batch: BatchRecord, plan: Plan) -> int:
        now = time.time()
        stale = await self.store.stale(
            batch.id, now=now, due=now + self.line_timeout_s, max_n=MAX_CLAIM
        )
        if stale:
            await self.send(batch, plan, await self.store.refs(batch.id, stale))
        return len(stale)

    async def resend_orphans(self, batch: BatchRecord, plan: Plan, indices: Sequence[int]) -> int:
        """Send again the lines of ``indices`` (held by a dead worker) still in flight."""
        due = time.time() + self.line_timeout_s
        taken = await self.store.orphans(batch.id, indices, due=due)
        if taken:
            await self.send(batch, plan, await self.store.refs(batch.id, taken))
        return len(taken)

    async def send(
        self,
        batch: BatchRecord,
        plan: Plan,
        refs: Sequence[tuple[int, LineRef]],
        room: Room | None = None,
    ) -> None:
        """Publish the lines ``refs``, each to a provider with ``room`` left in its share of
        the window (any able one when none of its route's has, or for a re-send: None)."""
        batch_id = batch.id
        self._inputs[batch_id] = batch.input_file_id
        bodies = await read_bodies(
            self.store, self.lines, batch.input_file_id, [r for _, r in refs]
        )
        workflow = None if self.runs is None else self.runs.runs(batch)
        if workflow is not None:
            await self._send_runs(batch, workflow, refs, bodies)
            return
        envelopes: list[Envelope] = []
        for (index, ref), raw in zip(refs, bodies, strict=True):
            if raw is None or not plan.routes[ref.route]:
                code = "input_file_unavailable" if raw is None else "model_not_found"
                await self._unsendable(batch_id, index, ref, code)
                continue
            try:
                envelopes.append(self._envelope(batch, plan, index, ref, raw, room=room))
            except ValidationError:  # checked at upload: only a file changed since fails here
                await self._unsendable(batch_id, index, ref, "invalid_request")
            except PolicyRefused:  # the policies leave no target for this line
                await self._unsendable(batch_id, index, ref, PolicyRefused.code)
        if envelopes:
            await publish_all(self.store.redis, self.store.prefix, envelopes)
            held = [(line_index(e.id), e.current.provider) for e in envelopes]
            await self.store.assign(batch_id, held)

    async def _send_runs(
        self,
        batch: BatchRecord,
        workflow: Workflow,
        refs: Sequence[tuple[int, LineRef]],
        bodies: Sequence[bytes | None],
    ) -> None:
        """Start a run per line of a workflow batch and send each one's first call."""
        assert self.runs is not None
        sent: list[tuple[int, Envelope]] = []
        for (index, ref), raw in zip(refs, bodies, strict=True):
            if raw is None:
                await self._unsendable(batch.id, index, ref, "input_file_unavailable")
                continue
            env = await self.runs.start(batch, workflow, index, ref.custom_id, raw)
            if env is not None:
                sent.append((index, env))
        if sent:
            await publish_all(self.store.redis, self.store.prefix, [e for _, e in sent])
            await self.store.assign(batch.id, [(i, e.current.provider) for i, e in sent])

    def _envelope(
        self,
        batch: BatchRecord,
        plan: Plan,
        index: int,
        ref: LineRef,
        raw: bytes,
        *,
        room: Room | None,
    ) -> Envelope:
        batch_id = batch.id
        route, able = plan.routes[ref.route], plan.able[ref.route] or plan.routes[ref.route]
        body = request_body(orjson.loads(raw), batch.default_model)
        request: ChatCompletionRequest | EmbeddingRequest
        ruling = NOTHING
        if batch.endpoint == Endpoint.embeddings.value:
            request = embedding_line(body, route)
        else:
            request = ChatCompletionRequest.model_validate(body)
            if self.policies:
                request, route, able, ruling = self._ruled(batch, request, route, able)
        assigner = self._assigners.setdefault((batch_id, ref.route), Assigner())
        pool = able  # who may be first: with ``room``, the providers with room left
        if room is not None:
            # A provider holding twice its share (a hung one, that lines hop to because it
            # always has a token) is no candidate of new lines at all.
            route = [t for t in route if t.provider.name not in room.swamped] or route
            able = [t for t in able if t.provider.name not in room.swamped] or able
            pool = [t for t in able if room.left.get(t.provider.name, 0) > 0] or able
        first = assigner.pick({t.key: plan.rates.get(t.key, 0.0) or 1e-9 for t in pool})
        if room is not None:
            provider = next(t.provider.name for t in pool if t.key == first)
            room.left[provider] = room.left.get(provider, 0) - 1
        return Envelope(
            id=line_task_id(batch_id, index),
            request=request,
            candidates=candidates(first, able, route, plan.rates),
            kind=Kind.batch,
            deadline=batch.expires_at_exact,
            batch_id=batch_id,
            custom_id=ref.custom_id,
            owner=batch.owner,
            flags=RouteFlags(hedge=ruling.hedge, cache=ruling.cache),
        )

    def _ruled(
        self,
        batch: BatchRecord,
        request: ChatCompletionRequest,
        route: list[Target],
        able: list[Target],
    ) -> tuple[ChatCompletionRequest, list[Target], list[Target], Ruling]:
        """The line's request capped, its targets as the policies allow (the preferred
        ones alone take first place while any is able), and the ruling."""
        profile = profile_request(request)
        ruling = decide(self.policies, Facts(request.model, profile, batch.owner, {}))
        if not ruling.fired:
            return request, route, able, ruling
        route = admit(ruling, route, ruling.mode or self.mode)
        able = [t for t in able if t in route] or route
        able = preferred_only(ruling, able)
        request, _ = capped(ruling, request, profile)
        return request, route, able, ruling

    async def _unsendable(self, batch_id: str, index: int, ref: LineRef, code: str) -> None:
        """Fail a line that cannot be sent at all (its input file was deleted, or no provider
        serves its model any more)."""
        await self.store.record(
            batch_id,
            custom_id=ref.custom_id,
            index=index,
            line=dropped(ref.custom_id, code),
            ok=False,
        )
