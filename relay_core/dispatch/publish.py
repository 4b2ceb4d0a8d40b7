"""Publish an envelope as a Celery task message with ``redis.asyncio``: no blocking I/O.

Celery's own ``send_task`` is synchronous (kombu talks to Redis with blocking sockets), which
would stall the API's event loop on every request. This writes the very message kombu's Redis
transport would write (Celery task protocol 2, JSON body, base64 body encoding) with one
``LPUSH`` on the provider's queue, which the worker's kombu consumer takes with ``BRPOP``.
``tests/integration/farm`` drives every request through it to real Celery workers.
"""

from __future__ import annotations

import base64
import os
import socket
import uuid

import orjson
from redis.asyncio import Redis

from relay_core.dispatch.broker import CHAT_TASK, task_argsrepr
from relay_core.dispatch.envelope import Envelope, queue_name
from relay_core.tracing import trace_headers

_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
_ORIGIN = f"relay-api@{socket.gethostname()}.{os.getpid()}"


def task_message(env: Envelope, queue: str, delivery_tag: str | None = None) -> bytes:
    """The broker message for ``env`` on ``queue`` (what ``app.send_task`` would LPUSH)."""
    args = [env.model_dump(mode="json", exclude_none=True)]
    body = orjson.dumps([args, {}, _EMBED])
    headers: dict[str, object] = {
        "lang": "py",
        "task": CHAT_TASK,
        "id": env.id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],
        "root_id": env.id,
        "parent_id": None,
        "argsrepr": task_argsrepr(env),  # what Flower shows: references, never the prompt
        "kwargsrepr": "{}",
        "origin": _ORIGIN,
        "ignore_result": True,
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
        **trace_headers(),  # the API's span, for the worker's (relay_core/tracing.py)
    }
    properties: dict[str, object] = {
        "argsrepr": headers["argsrepr"],  # kombu copies send_task's options here too
        "kwargsrepr": "{}",
        "correlation_id": env.id,
        "reply_to": "",
        "delivery_mode": 2,
        "delivery_info": {"exchange": "", "routing_key": queue},
        "priority": 0,
        "body_encoding": "base64",
        "delivery_tag": delivery_tag or str(uuid.uuid4()),
    }
    return orjson.dumps(
        {
            "body": base64.b64encode(body).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": headers,
            "properties": properties,
        }
    )


async def publish_envelope(redis: Redis, prefix: str, env: Envelope) -> str:
    """Queue ``env`` on its current candidate's provider queue, now. Returns the message's
    delivery tag (kombu keeps a received, unacknowledged message under it)."""
    queue = queue_name(prefix, env.current.provider)
    tag = str(uuid.uuid4())
    await redis.lpush(queue, task_message(env, queue, tag))
    return tag
