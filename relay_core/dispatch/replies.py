"""Where a worker's final word goes, and how the API hears it.

Each API process subscribes once to its own channel (``{prefix}:reply:{instance}``); the
envelope's ``reply_to`` names it. The reply is also kept briefly under ``{prefix}:result:{id}``
so a waiter whose subscription blinked can still read it.
"""

from __future__ import annotations

from redis.asyncio import Redis

from relay_core.dispatch.envelope import Reply

RESULT_TTL_S = 120


def reply_channel(prefix: str, instance: str) -> str:
    return f"{prefix}:reply:{instance}"


def result_key(prefix: str, request_id: str) -> str:
    return f"{prefix}:result:{request_id}"


async def publish_reply(redis: Redis, prefix: str, channel: str, reply: Reply) -> None:
    data = reply.model_dump_json(exclude_none=True)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.set(result_key(prefix, reply.id), data, ex=RESULT_TTL_S)
        pipe.publish(channel, data)
        await pipe.execute()


async def read_result(redis: Redis, prefix: str, request_id: str) -> Reply | None:
    raw = await redis.get(result_key(prefix, request_id))
    return None if raw is None else Reply.model_validate_json(raw)
