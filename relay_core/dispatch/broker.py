"""The Celery app both sides share: Redis broker, one queue per provider, at-least-once.

The API publishes with it and the workers consume with it, so its configuration lives here.

Settings follow the measurements in docs/design.md: ``acks_late`` with reject-on-lost so a dead
worker's task is redelivered; prefetch 1; a visibility timeout above the longest call, with a
fast restore of unacked messages; no Celery result backend (replies go over Redis pub/sub).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from celery import Celery
from kombu import Queue

from relay_core.dispatch.envelope import Envelope, queue_name
from relay_core.settings import Settings

CHAT_TASK = "relay.chat"


def celery_config(settings: Settings, queues: list[str]) -> dict[str, Any]:
    return {
        "broker_url": settings.redis_url,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            "visibility_timeout": settings.visibility_timeout_s,
            "unacked_restore_interval": 5,
        },
        "broker_pool_limit": 64,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "result_backend": None,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": 1,
        # Task events (three publishes a task) only while Flower watches: it switches them on
        # every few seconds with the enable_events control command.
        "worker_send_task_events": False,
        "task_send_sent_event": False,  # one publish less per request; workers still report
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        "task_queues": [Queue(q, routing_key=q) for q in queues],
        "task_default_queue": queues[0] if queues else f"{settings.key_prefix}.default",
        "task_create_missing_queues": True,
        "worker_cancel_long_running_tasks_on_connection_loss": False,
    }


def create_celery(settings: Settings, providers: list[str]) -> Celery:
    """A Celery app whose queues are ``{prefix}.{provider}`` for each provider given."""
    app = Celery("relay")
    queues = [queue_name(settings.key_prefix, p) for p in providers]
    app.conf.update(celery_config(settings, queues))
    return app


def task_argsrepr(env: Envelope) -> str:
    """What Flower shows as a task's arguments: references only, never the prompt."""
    return f"<envelope {env.id} kind={env.kind.value} to={env.current.key}>"


def send_envelope(
    app: Celery,
    prefix: str,
    env: Envelope,
    delay_s: float = 0.0,
    headers: Mapping[str, object] | None = None,
) -> None:
    """Publish ``env`` to its current candidate's queue, keeping the task id (and the trace
    context its ``headers`` carry)."""
    traceparent = (headers or {}).get("traceparent")
    app.send_task(
        CHAT_TASK,
        args=[env.model_dump(mode="json", exclude_none=True)],
        task_id=env.id,
        queue=queue_name(prefix, env.current.provider),
        countdown=delay_s if delay_s > 0 else None,
        argsrepr=task_argsrepr(env),
        kwargsrepr="{}",
        ignore_result=True,
        headers={"traceparent": traceparent} if isinstance(traceparent, str) else None,
    )
