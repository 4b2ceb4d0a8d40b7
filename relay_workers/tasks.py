"""Thin Celery tasks: decode the envelope, run one visit, then ack, forward or reply.

Tasks are registered on an app instance (never ``shared_task``: those leak between apps).
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from relay_core.dispatch.broker import CHAT_TASK, send_envelope
from relay_core.dispatch.envelope import Envelope
from relay_core.dispatch.outcome import Forward
from relay_workers.runtime import Runtime


def register_tasks(app: Celery, runtime: Runtime) -> None:
    prefix = runtime.settings.key_prefix

    @app.task(name=CHAT_TASK, acks_late=True, ignore_result=True, shared=False)
    def chat(envelope: dict[str, Any]) -> None:
        env = Envelope.model_validate(envelope)
        outcome = runtime.run(runtime.handle(env))
        if isinstance(outcome, Forward):
            send_envelope(app, prefix, outcome.envelope, outcome.delay_s)
