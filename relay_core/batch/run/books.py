"""The books of each batch line, kept around the executor's visit in a worker.

Before a visit: a line whose ``custom_id`` is already recorded (a redelivery, or a late
duplicate the sweeper re-sent) is dropped; so is a line of a batch that is finalizing or final,
or whose window has ended (the expiry writes it as ``batch_expired``); a line of a cancelling
batch is recorded as ``batch_cancelled`` without being run. During it: the line waits for its
token here, not inside the limiter, and stands aside while an interactive request waits for the
same provider (:mod:`relay_core.dispatch.priority`). After it: a final outcome is
recorded once per ``custom_id`` (``record.lua``); a line handed back to a queue renews its
sign of life, so the sweeper leaves it alone; and a line every candidate refuses for good (the
provider does not have the model, refuses the key or the request, or its adapter cannot send
a field of it) fails now instead of backing off until the window ends.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from relay_core.batch.models import BatchStatus
from relay_core.batch.run.feeder import line_index
from relay_core.batch.run.outputs import dropped, failure, success
from relay_core.batch.store.store import BatchStore
from relay_core.dispatch.envelope import Envelope, Reply
from relay_core.dispatch.outcome import Done, Forward, Outcome
from relay_core.dispatch.priority import Gate
from relay_core.errors import (
    ClientError,
    ErrorInfo,
    GatewayTimeout,
    InvalidRequest,
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamModelNotFound,
)

Visit = Callable[[Envelope], Awaitable[Outcome]]

# Failures that another try of the same candidate will not fix within a batch's window.
FOR_GOOD = (UpstreamModelNotFound, UpstreamAuthError, UpstreamBadRequest, InvalidRequest)
# A try of a line waits in place for a token at most this long (the executor's own wait).
TRY_S = 0.05
_IN_PROGRESS = BatchStatus.in_progress.value.encode()
_CANCELLING = BatchStatus.cancelling.value.encode()


def _with_deadline(outcome: Outcome, env: Envelope) -> Outcome:
    """A try's outcome with the line's own deadline back on a forwarded envelope."""
    if isinstance(outcome, Forward):
        restored = outcome.envelope.model_copy(update={"deadline": env.deadline})
        return Forward(restored, outcome.delay_s)
    return outcome


def _no_token(env: Envelope, outcome: Outcome) -> float | None:
    """How long to wait before trying again when the try sent nothing (no token now, or a
    candidate skipped); None when the outcome stands (an answer, or a failure upstream)."""
    if isinstance(outcome, Forward):
        return outcome.delay_s if outcome.envelope.attempts == env.attempts else None
    error = outcome.reply.error
    if error is not None and error.is_a(GatewayTimeout) and time.time() < env.deadline:
        return 0.0  # only the try's own short deadline passed
    return None


def refused_for_good(env: Envelope) -> ErrorInfo | None:
    """The last failure, when every candidate's latest failure is one that will not heal."""
    latest: dict[tuple[str | None, str | None], ErrorInfo] = {}
    for info in env.failures:
        latest[(info.provider, info.model)] = info
    found = [latest.get((c.provider, c.model)) for c in env.candidates]
    if found and all(f is not None and f.is_a(*FOR_GOOD) for f in found):
        return env.failures[-1]
    return None


class LineBooks:
    def __init__(
        self,
        store: BatchStore,
        gate: Gate,
        *,
        line_timeout_s: float,
        hold_s: float,
        on_finished: Callable[[], None],
    ) -> None:
        self.store = store
        self.gate = gate
        self.line_timeout_s = line_timeout_s
        self.hold_s = hold_s  # longest a line waits for a token here before going back
        self.on_finished = on_finished

    async def handle(self, env: Envelope, visit: Visit) -> Outcome:
        batch_id, custom_id = env.batch_id or "", env.custom_id or ""
        keys = self.store.keys(batch_id)
        async with self.store.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(keys.meta, ["status", "closing"])
            pipe.hexists(keys.results, custom_id)
            (status, closing), seen = await pipe.execute()
        skip = Done(Reply(id=env.id, ok=False))
        if seen or closing:
            return skip
        if status == _CANCELLING:
            await self._record(env, dropped(custom_id, "batch_cancelled"), ok=False)
            return skip
        if status != _IN_PROGRESS or time.time() >= env.deadline:
            return skip
        try:
            outcome = await self._visit(env, visit)
        except ClientError as exc:  # the request itself is refused (e.g. a parameter)
            outcome = Done(Reply(id=env.id, ok=False, error=exc.to_info()))
        return await self._after(env, outcome)

    async def _visit(self, env: Envelope, visit: Visit) -> Outcome:
        """Visit the line when it is its turn (:class:`~relay_core.dispatch.priority.Gate`):
        it waits for its token here rather than inside the limiter, standing aside while an
        interactive request waits for the same provider.

        Each try lets the executor wait in place for at most :data:`TRY_S`; a try that found
        no token after all (nothing was sent) waits for its turn again, for up to ``hold_s``
        in all, after which the line goes back to its queue.
        """
        held = 0.0
        while True:
            held += await self.gate.turn(env.current, self.hold_s - held)
            short = env.model_copy(update={"deadline": min(env.deadline, time.time() + TRY_S)})
            outcome = _with_deadline(await visit(short), env)
            again = _no_token(env, outcome)
            if again is None:
                return outcome
            if isinstance(outcome, Forward):  # maybe now pointing at another candidate
                env = outcome.envelope
            if held >= self.hold_s:
                return Forward(env, again)
            held += 0.001  # every try counts, so the loop ends

    async def _after(self, env: Envelope, outcome: Outcome) -> Outcome:
        """Record a final outcome (or renew a forwarded line's sign of life); the outcome the
        task acts on."""
        if isinstance(outcome, Forward):
            given_up = refused_for_good(outcome.envelope)
            if given_up is None:
                due = time.time() + outcome.delay_s + self.line_timeout_s
                await self.store.touch(env.batch_id or "", line_index(env.id), due)
                return outcome
            outcome = Done(Reply(id=env.id, ok=False, error=given_up))
        reply = outcome.reply
        custom_id = env.custom_id or ""
        if reply.ok:
            usage = reply.completion.usage if reply.completion is not None else None
            tokens = (usage.prompt_tokens, usage.completion_tokens) if usage else (0, 0)
            await self._record(
                env,
                success(custom_id, env.id, reply),
                ok=True,
                tokens=tokens,
                upstream_s=reply.upstream_s,
                provider=reply.provider,
            )
        elif reply.error is not None and time.time() < env.deadline:
            line = failure(custom_id, env.id, reply.error)
            await self._record(env, line, ok=False, provider=reply.error.provider)
        # else: out of time; the expiry writes it as batch_expired
        return outcome

    async def _record(
        self,
        env: Envelope,
        line: bytes,
        *,
        ok: bool,
        tokens: tuple[int, int] = (0, 0),
        provider: str | None = None,
        upstream_s: float = 0.0,
    ) -> None:
        recorded = await self.store.record(
            env.batch_id or "",
            custom_id=env.custom_id or "",
            index=line_index(env.id),
            line=line,
            ok=ok,
            tokens=tokens,
            provider=provider,
            upstream_s=upstream_s,
        )
        if recorded.finished:
            self.on_finished()
