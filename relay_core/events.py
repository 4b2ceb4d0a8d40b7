"""What happened on each upstream call, for whoever keeps count (metrics, usage counters).

The executor reports every call it makes, success or failure, to each sink it was given at
start-up. Sinks must be cheap and must not raise: a failing sink is logged and skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from relay_core.errors import RelayError

log = logging.getLogger("relay.events")


@dataclass(frozen=True, slots=True)
class CallRecord:
    provider: str
    model: str
    owner: str | None  # gateway key id (a hash), None for internal calls
    kind: str  # "interactive" | "batch"
    ok: bool
    error: type[RelayError] | None  # the error's class when not ok (e.g. RateLimited)
    latency_s: float  # upstream call, whole answer
    queue_wait_s: float  # from enqueue to the call starting
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usage_estimated: bool = False  # the tokens are Relay's estimate (the upstream sent none)
    ttft_s: float | None = None  # streaming: time to the first chunk
    at: float = 0.0  # epoch seconds
    family: str | None = None  # the request's task family (relay_core/profile), if profiled


class EventSink(Protocol):
    async def call_finished(self, record: CallRecord) -> None: ...


async def emit(sinks: Sequence[EventSink], record: CallRecord) -> None:
    for sink in sinks:
        try:
            await sink.call_finished(record)
        except Exception:
            log.warning("event sink %s failed", type(sink).__name__, exc_info=True)
