"""Start a worker process: ``relay worker [--providers a,b] [--concurrency N]``."""

from __future__ import annotations

import logging

from celery import Celery

from relay_core.dispatch.broker import create_celery
from relay_core.settings import Settings
from relay_workers.runtime import Runtime
from relay_workers.tasks import register_tasks

log = logging.getLogger("relay.worker")


def build_worker_app(settings: Settings, only: set[str] | None = None) -> tuple[Celery, Runtime]:
    """The Celery app and runtime for a worker serving ``only`` (default: all enabled)."""
    runtime = Runtime(settings, only)
    if not runtime.served:
        runtime.close()
        raise SystemExit("relay worker: no enabled provider to serve (check `relay config check`)")
    app = create_celery(settings, runtime.served)
    register_tasks(app, runtime)
    return app, runtime


def run_worker(
    settings: Settings,
    only: set[str] | None = None,
    concurrency: int | None = None,
    loglevel: str = "INFO",
    hostname: str | None = None,
) -> None:
    app, runtime = build_worker_app(settings, only)
    log.info("worker serving %s", ", ".join(runtime.served))
    try:
        worker = app.Worker(
            pool="threads",
            concurrency=concurrency or settings.worker_concurrency,
            loglevel=loglevel,
            hostname=hostname,
            send_events=True,
        )
        worker.start()
    finally:
        runtime.close()
