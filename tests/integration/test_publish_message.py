"""The hand-written Celery message equals what Celery's own builder puts on the queue
(issue 14, item 16): the API publishes with one async LPUSH (``relay_core.dispatch.publish``),
so its message must stay what ``app.send_task`` would write, field for field."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import orjson
import pytest

from relay_core.dispatch.broker import create_celery, send_envelope
from relay_core.dispatch.envelope import Candidate, Envelope, queue_name
from relay_core.dispatch.publish import task_message
from relay_core.settings import Settings
from tests.support.farm import REDIS_URL, require_redis

pytestmark = pytest.mark.integration

# What differs from one message to the next whoever builds it.
VOLATILE_HEADERS = {"origin"}
VOLATILE_PROPERTIES = {"delivery_tag", "reply_to"}  # reply_to: the app's result oid (unused)


def _decoded(raw: bytes) -> dict[str, Any]:
    message: dict[str, Any] = orjson.loads(raw)
    message["body"] = orjson.loads(base64.b64decode(message["body"]))
    for key in VOLATILE_HEADERS:
        message["headers"].pop(key, None)
    for key in VOLATILE_PROPERTIES:
        message["properties"].pop(key, None)
    return message


def test_the_api_writes_the_message_celery_would() -> None:
    redis = require_redis()
    prefix = f"msg{uuid.uuid4().hex[:8]}"
    settings = Settings(redis_url=REDIS_URL, key_prefix=prefix)
    app = create_celery(settings, ["p"])
    env = Envelope(
        id=f"chatcmpl-{uuid.uuid4().hex}",
        request={"model": "chat", "messages": [{"role": "user", "content": "hi"}]},
        candidates=[Candidate(provider="p", model="m")],
        deadline=time.time() + 60,
        owner="owner-1",
        message_tokens=[3],
    )
    queue = queue_name(prefix, "p")
    try:
        send_envelope(app, prefix, env)
        theirs = redis.rpop(queue)
        assert isinstance(theirs, bytes)
        ours = task_message(env, queue)
        assert _decoded(ours) == _decoded(theirs)
    finally:
        redis.delete(queue)
        app.close()
