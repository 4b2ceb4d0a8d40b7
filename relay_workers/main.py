"""Start a worker process: ``relay worker [--providers a,b] [--concurrency N]``."""

from __future__ import annotations

import asyncio
import logging
import sys

from celery import Celery
from celery.signals import worker_shutting_down
from celery.utils.nodenames import default_nodename, host_format
from opentelemetry.trace import Tracer

from relay_core.dispatch.broker import create_celery
from relay_core.metrics.collector import serve_metrics
from relay_core.settings import Settings
from relay_workers.elastic import Elastic, elastic_pool
from relay_workers.runtime import Runtime
from relay_workers.tasks import register_tasks
from relay_workers.transport import TRANSPORT

log = logging.getLogger("relay.worker")
SWITCH_INTERVAL_S = 0.0005


def build_worker_app(
    settings: Settings, only: set[str] | None = None, tracer: Tracer | None = None
) -> tuple[Celery, Runtime]:
    """The Celery app and runtime for a worker serving ``only`` (default: all enabled);
    ``tracer``: where spans go (default: the settings' OTLP endpoint, or none)."""
    runtime = Runtime(settings, only, tracer)
    if not runtime.served:
        runtime.close()
        raise SystemExit("relay worker: no enabled provider to serve (check `relay config check`)")
    app = create_celery(settings, runtime.served)
    app.conf.broker_transport = TRANSPORT  # survives a Redis restart (relay_workers/transport.py)
    register_tasks(app, runtime)
    return app, runtime


def run_worker(
    settings: Settings,
    only: set[str] | None = None,
    concurrency: int | None = None,
    loglevel: str = "INFO",
    hostname: str | None = None,
    *,
    metrics_port: int | None = None,
    metrics_address: str | None = None,
) -> None:
    # Task threads hand each call to the event loop thread and back: with the default 5 ms GIL
    # switch interval every hand-off can wait that long behind a busy thread.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    app, runtime = build_worker_app(settings, only)
    log.info("worker serving %s", ", ".join(runtime.served))
    port = metrics_port or settings.worker_metrics_port
    address = metrics_address or settings.worker_metrics_address
    stop_metrics = serve_metrics(port, runtime.metrics_registry, address) if port else None

    def on_shutdown(**_: object) -> None:
        # SIGTERM/SIGINT: Celery stops consuming and waits for running tasks; bound the wait.
        runtime.begin_stop(settings.shutdown_grace_s)

    worker_shutting_down.connect(on_shutdown, weak=False)
    base = concurrency or settings.worker_concurrency
    bound = max(base, settings.worker_max_concurrency)
    sizing = None
    try:
        worker = app.Worker(
            pool=elastic_pool(bound),  # slots grow with rate x answer time (elastic.py)
            concurrency=base,
            loglevel=loglevel,
            hostname=host_format(default_nodename(hostname)) if hostname else None,
            send_events=False,  # see worker_send_task_events in relay_core.dispatch.broker
        )
        elastic = Elastic(worker, runtime, base=base, bound=bound)
        sizing = asyncio.run_coroutine_threadsafe(elastic.run(), runtime.loop)
        worker.start()
    finally:
        if sizing is not None:
            sizing.cancel()
        worker_shutting_down.disconnect(on_shutdown)
        if stop_metrics is not None:
            stop_metrics()
        runtime.close()
