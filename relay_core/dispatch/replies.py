"""Where a worker's final word goes, and how the API hears it.

Each API process subscribes once to its own channel (``{prefix}:reply:{instance}``); the
envelope's ``reply_to`` names it. The reply is also kept briefly under ``{prefix}:result:{id}``
so a waiter whose subscription blinked can still read it.

A request has one reply: the result is written with ``SET NX`` and published only when that
write won, in one script. When a request was published again because its worker seemed dead
(:mod:`relay_core.dispatch.holds`) and both copies answer, the later answer is dropped.
"""

from __future__ import annotations

from redis.asyncio import Redis

from relay_core.dispatch.envelope import Reply

RESULT_TTL_S = 120


def reply_channel(prefix: str, instance: str) -> str:
    return f"{prefix}:reply:{instance}"


def result_key(prefix: str, request_id: str) -> str:
    return f"{prefix}:result:{request_id}"


# KEYS: the result key; ARGV: the reply, its TTL, the channel. Returns 1 when published.
_REPLY_ONCE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  redis.call('PUBLISH', ARGV[3], ARGV[1])
  return 1
end
return 0
"""


async def publish_reply(redis: Redis, prefix: str, channel: str, reply: Reply) -> bool:
    """Store and publish ``reply``, unless the request was answered already (False then)."""
    data = reply.model_dump_json(exclude_none=True)
    script = redis.register_script(_REPLY_ONCE)
    won = await script(keys=[result_key(prefix, reply.id)], args=[data, RESULT_TTL_S, channel])
    return bool(won)


async def read_result(redis: Redis, prefix: str, request_id: str) -> Reply | None:
    raw = await redis.get(result_key(prefix, request_id))
    return None if raw is None else Reply.model_validate_json(raw)
