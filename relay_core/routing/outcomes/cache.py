"""The outcomes as a router reads them: one ``HGETALL`` per task family at most every
``ttl_s``, faded to the moment of reading (the same bargain as :class:`LiveCache`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from types import MappingProxyType

from relay_core.routing.outcomes.stats import Stats
from relay_core.routing.outcomes.store import OutcomeStore

NOTHING: Mapping[str, Stats] = MappingProxyType({})


class OutcomeCache:
    def __init__(
        self,
        store: OutcomeStore,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.clock = clock
        self.wall = wall
        self._seen: dict[str, tuple[float, Mapping[str, Stats]]] = {}

    async def stats(self, family: str) -> Mapping[str, Stats]:
        now = self.clock()
        seen = self._seen.get(family)
        if seen is not None and now - seen[0] < self.ttl_s:
            return seen[1]
        wall = self.wall()
        read = await self.store.read(family)
        faded = MappingProxyType({k: s.faded(wall) for k, s in read.items()})
        self._seen[family] = (now, faded)
        return faded
