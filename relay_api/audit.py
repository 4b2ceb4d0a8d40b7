"""Writing each chat request's route audit after its answer, off the response's path."""

from __future__ import annotations

import asyncio
import logging

from relay_api.routing import Routing
from relay_core.dispatch.envelope import Envelope, Reply
from relay_core.dispatch.streaming import wants_stream
from relay_core.errors import RelayError
from relay_core.routing.audit import (
    AuditStore,
    Decided,
    RouteAudit,
    attempts,
    candidates,
    final_code,
)

log = logging.getLogger("relay.api")


def build_audit(
    env: Envelope, routing: Routing, reply: Reply | None, error: RelayError | None
) -> RouteAudit:
    decided = Decided(
        considered=routing.considered or routing.ranked,
        ranked=routing.ranked,
        live=routing.live,
        route=routing.route,
        ruling=routing.ruling,
        mode=routing.mode,
    )
    ruling = routing.ruling
    caps = {
        name: value
        for name, value in (("temperature", ruling.temperature), ("max_tokens", ruling.max_tokens))
        if value is not None
    }
    served = None
    if reply is not None and reply.ok and reply.provider:
        served = f"{reply.provider}/{reply.model}"
    final = reply.error if reply is not None else None
    if final is None and error is not None:
        final = error.to_info()
    return RouteAudit(
        id=env.id,
        owner=env.owner or "",
        model=env.request.model,
        stream=wants_stream(env),
        profile=routing.profile,
        mode=routing.mode,
        policies=list(ruling.fired),
        caps=caps,
        candidates=candidates(decided),
        explored=routing.route.explored if routing.route else False,
        escalated=routing.route.escalated if routing.route else False,
        chosen=routing.ranked[0].key if routing.ranked else None,
        attempts=attempts(reply.failures if reply else [], served, final),
        served_by=served,
        error=None if served else final_code(final),
        note=routing.note,
    )


class AuditLog:
    """Builds and writes audits in the background; at most one SET each."""

    def __init__(self, store: AuditStore) -> None:
        self.store = store
        self._pending: set[asyncio.Task[None]] = set()

    def later(
        self,
        env: Envelope,
        routing: Routing,
        reply: Reply | None = None,
        error: RelayError | None = None,
    ) -> None:
        if self.store.ttl_s <= 0:
            return
        task = asyncio.ensure_future(self._write(env, routing, reply, error))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _write(
        self, env: Envelope, routing: Routing, reply: Reply | None, error: RelayError | None
    ) -> None:
        try:
            await self.store.write(build_audit(env, routing, reply, error))
        except Exception:  # an audit lost is not worth a failed request
            log.warning("writing the route audit of %s failed", env.id, exc_info=True)

    async def drain(self) -> None:
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
