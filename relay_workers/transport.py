"""kombu's Redis transport, except that a channel whose connection was closed under it fails
like a broken connection, not with an ``AttributeError``.

When Redis goes away while tasks run, Celery tears the broker connection down (``collect()``,
then ``close()``) while channels of it may still be open: the channel of the tasks still
running (there always are, with ``acks_late``) outlives its transport's connection. Its next
use (the late ack of a task that just finished, or the close that puts the unacked messages
back) asks for a new Redis pool, and kombu reads the host from a connection that is gone:
``AttributeError: 'NoneType' object has no attribute 'hostname'``. Celery and kombu expect a
connection error there (the ack is logged as failed, the close ignored); an ``AttributeError``
is "unrecoverable" to Celery and the worker process exits. A Redis restart would kill every
busy worker (``tests/faults/test_redis.py`` saw it with Celery 5.7 and kombu 5.7).

Raising Redis's ``ConnectionError`` instead lets the worker reconnect as it does for any
broken connection. The messages whose ack failed stay in Redis's unacked set until the
visibility timeout puts them back (a batch line is re-sent sooner by the sweeper).

Only workers use it (:func:`relay_workers.main.build_worker_app`): they are the consumers. The
API and Flower keep kombu's own, whose ``redis://`` URI Flower needs to read queue lengths (this
one's URI, shown in the worker's start-up banner, names the class instead).
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection.client is None:
            raise RedisConnectionError("the broker connection of this channel is closed")
        params: dict[str, Any] = super()._connparams(asynchronous)  # type: ignore[misc]
        return params


class Transport(kombu_redis.Transport):
    Channel = Channel


TRANSPORT = f"{__name__}:{Transport.__name__}"
