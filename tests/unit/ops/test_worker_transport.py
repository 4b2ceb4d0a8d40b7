"""The workers' broker transport: a channel whose connection is gone fails as a connection
error, which Celery survives (kombu's ``AttributeError`` made the worker exit when Redis
restarted; see ``relay_workers/transport.py`` and ``tests/faults/test_redis.py``)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError

from relay_core.dispatch.broker import create_celery
from relay_core.settings import Settings
from relay_workers.transport import TRANSPORT, Channel, Transport


def test_a_channel_whose_connection_was_closed_fails_as_a_connection_error() -> None:
    orphan = SimpleNamespace(connection=SimpleNamespace(client=None))
    with pytest.raises(AttributeError):  # what kombu itself does
        kombu_redis.Channel._connparams(orphan)  # type: ignore[attr-defined]
    with pytest.raises(RedisConnectionError):
        Channel._connparams(orphan)  # type: ignore[arg-type]
    assert RedisConnectionError in Transport.connection_errors


def test_a_celery_app_configured_with_it_connects_through_it() -> None:
    app = create_celery(Settings(), ["p"])
    app.conf.broker_transport = TRANSPORT  # as relay_workers.main.build_worker_app does
    with app.connection_for_write() as connection:
        assert isinstance(connection.transport, Transport)
        assert connection.transport.driver_type == "redis"
