"""Worker heartbeats in Redis: who is consuming which provider queues, right now.

Each worker process writes ``{prefix}:worker:{name}`` every few seconds with a short TTL, so a
dead worker vanishes on its own. ``/ready`` and ``relay status`` read them; ``relay status``
lists the workers by the machine (``host``) they run on, with the provider queues each serves.
"""

from __future__ import annotations

import json
import time

from pydantic import BaseModel
from redis.asyncio import Redis

HEARTBEAT_EVERY_S = 5.0
HEARTBEAT_TTL_S = 15


class WorkerBeat(BaseModel):
    name: str
    host: str = ""  # the machine's hostname ("" in beats from versions before it was sent)
    pid: int
    providers: list[str]
    in_flight: int = 0
    at: float


def _key(prefix: str, name: str) -> str:
    return f"{prefix}:worker:{name}"


async def beat(redis: Redis, prefix: str, info: WorkerBeat) -> None:
    await redis.set(_key(prefix, info.name), info.model_dump_json(), ex=HEARTBEAT_TTL_S)


async def forget(redis: Redis, prefix: str, name: str) -> None:
    await redis.delete(_key(prefix, name))


async def live_workers(redis: Redis, prefix: str) -> list[WorkerBeat]:
    keys = [k async for k in redis.scan_iter(match=_key(prefix, "*"), count=200)]
    if not keys:
        return []
    raws = await redis.mget(keys)
    now = time.time()
    out = [WorkerBeat.model_validate(json.loads(r)) for r in raws if r is not None]
    return [w for w in out if now - w.at < HEARTBEAT_TTL_S]
