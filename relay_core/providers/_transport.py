"""The upstream connection pool, split into shards so that its cost stays flat under load.

httpcore 1.x walks every pooled connection on each request and each response, and its check
for surplus idle connections counts the whole pool once per idle connection: the cost of a call
grows with the square of the connections open. At 50 calls in flight that bookkeeping was a
quarter of a worker's CPU (py-spy, docs/benchmarks.md). The fix exists upstream
(encode/httpcore#1035, open; pydantic/httpx2#974) but not in a release of httpx's line.

:class:`ShardedTransport` is an ordinary httpx transport (the public extension point) that
hands each request to one of several pools in turn, so each pool holds a fraction of the
connections. Nothing else changes: limits are divided among the shards, one TLS context is
shared. Drop it once httpcore's pool is linear.
"""

from __future__ import annotations

import itertools
import ssl
from collections.abc import Sequence

import httpx

SHARDS = 8


class ShardedTransport(httpx.AsyncBaseTransport):
    """Requests go to each of ``shards`` in turn (see :meth:`pools` to build the usual ones)."""

    def __init__(self, shards: Sequence[httpx.AsyncBaseTransport]) -> None:
        if not shards:
            raise ValueError("at least one shard")
        self.shards = list(shards)
        self._next = itertools.cycle(self.shards)

    @classmethod
    def pools(
        cls,
        *,
        max_connections: int,
        max_keepalive_connections: int,
        verify: ssl.SSLContext | bool = True,
        shards: int = SHARDS,
    ) -> ShardedTransport:
        """``shards`` connection pools (fewer for a small pool) sharing the limits and one
        TLS context (~75 ms of CPU to build each)."""
        n = max(1, min(shards, max_connections, max_keepalive_connections))
        if verify is True:
            verify = ssl.create_default_context()
        limits = httpx.Limits(
            max_connections=max_connections // n,
            max_keepalive_connections=max_keepalive_connections // n,
        )
        return cls([httpx.AsyncHTTPTransport(limits=limits, verify=verify) for _ in range(n)])

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await next(self._next).handle_async_request(request)

    async def aclose(self) -> None:
        for shard in self.shards:
            await shard.aclose()
