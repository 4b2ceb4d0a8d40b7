"""The async Redis client of a Relay process (the API, each worker): one bounded pool that
rides out a Redis restart.

A pooled connection whose server went away fails the next command sent on it (redis-py does
not always notice a closed connection before using it), and redis-py retries nothing by
default: after a restart, each stale connection in the pool would fail one request. Commands
therefore retry a connection error a few times on a fresh connection, for about half a second;
a Redis that stays down still fails them, and the callers' loops try again later. A retried
command may run twice when its first reply was lost: Relay's writes are idempotent where it
matters (a batch line is recorded once by ``HSETNX``, a re-claimed line is swept back).
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

RETRIES = 3
POOL_TIMEOUT_S = 10  # how long a caller waits for a free connection of a full pool


def redis_pool(url: str, max_connections: int) -> Redis:
    """A client on a pool of at most ``max_connections`` connections to ``url``."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=POOL_TIMEOUT_S,
        retry=Retry(ExponentialBackoff(cap=0.25, base=0.05), RETRIES),
        retry_on_error=[RedisConnectionError],
    )
    return Redis(connection_pool=pool)
