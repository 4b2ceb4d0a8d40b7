"""Thin Celery tasks: decode the envelope, run one visit, then ack, forward or reply.

Tasks are registered on an app instance (never ``shared_task``: those leak between apps).
From its receipt (``task_received``, before a delayed re-try's countdown) to the end of its
task, a message is in the runtime's held set, which the API watches to send again the requests
of a worker that died (:mod:`relay_core.dispatch.holds`).
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import task_received

from relay_core.dispatch.broker import CHAT_TASK, send_envelope
from relay_core.dispatch.envelope import Envelope
from relay_core.dispatch.outcome import Forward
from relay_workers.runtime import Runtime


def register_tasks(app: Celery, runtime: Runtime) -> None:
    prefix = runtime.settings.key_prefix

    def received(request: Any = None, **_: Any) -> None:
        # The signal is process-wide: take only this app's messages (tests run several).
        if request is not None and request.app is app and request.name == CHAT_TASK:
            runtime.held.take(request.id)

    task_received.connect(received, weak=False)

    @app.task(name=CHAT_TASK, acks_late=True, ignore_result=True, shared=False, bind=True)
    def chat(task: Any, envelope: dict[str, Any]) -> None:
        try:
            env = Envelope.model_validate(envelope)
            trace = task.request.headers  # the API's span, carried on (relay_core/tracing.py)
            outcome = runtime.run(runtime.handle(env, trace))
            if isinstance(outcome, Forward):
                send_envelope(app, prefix, outcome.envelope, outcome.delay_s, trace)
        finally:  # handed on (published first) or done: no longer this process's to answer
            runtime.held.release(task.request.id)
