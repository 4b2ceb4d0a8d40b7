"""The worker's side: each call's outcome, counted in memory and written every ``every_s``
(:class:`~relay_core.tally.Tally`), so the learning costs the call nothing.

What counts: an answer the judge took (``s``, and its time in a latency bucket), an answer
it refused or one that is not the provider's wire format (``f``: both are
:class:`UpstreamMalformed`). Transport failures (5xx, timeouts, 429) do not: the breaker and
the limiter keep traffic off a provider that does not answer; this learns what its answers
are worth.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping

from relay_core.errors import UpstreamMalformed
from relay_core.events import CallRecord
from relay_core.routing.outcomes.stats import latency_bucket
from relay_core.routing.outcomes.store import OutcomeStore
from relay_core.tally import Tally

Key = tuple[str, str, str]  # family, target, field


class OutcomeSink:
    def __init__(
        self, store: OutcomeStore, every_s: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.clock = clock
        self.tally: Tally[Key] = Tally(self._write, every_s, "routing outcomes")

    async def call_finished(self, record: CallRecord) -> None:
        if record.family is None:
            return
        target = f"{record.provider}/{record.model}"
        if record.ok:
            self.tally.add((record.family, target, "s"))
            bucket = latency_bucket(record.latency_s)
            self.tally.add((record.family, target, f"h{bucket}"))
        elif record.error is not None and issubclass(record.error, UpstreamMalformed):
            self.tally.add((record.family, target, "f"))

    async def _write(self, counts: Mapping[Key, int]) -> None:
        deltas: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        for (family, target, field), n in counts.items():
            deltas[(family, target)][field] = n
        await self.store.record(deltas, self.clock())

    async def aclose(self) -> None:
        await self.tally.aclose()
