"""``relay worker``: a Celery worker process serving some or all provider queues."""

from __future__ import annotations

import argparse
import logging

from relay_cli.logs import setup_logging
from relay_cli.startup import catalogue_refusal


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("worker", help="run a worker serving provider queues")
    p.add_argument("--providers", help="comma-separated provider names (default: all enabled)")
    p.add_argument("--concurrency", type=int, help="threads (default RELAY_WORKER_CONCURRENCY)")
    p.add_argument("--loglevel", default="INFO")
    p.add_argument("--hostname", help="Celery node name (default: relay@<host>)")
    p.add_argument("--log-format", choices=["text", "json"], default=None)
    p.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port")
    p.add_argument(
        "--metrics-address",
        help="the metrics port's bind address (default RELAY_WORKER_METRICS_ADDRESS, 127.0.0.1)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from relay_core.settings import Settings
    from relay_workers.main import run_worker

    settings = Settings()
    setup_logging("worker", args.log_format or settings.log_format, args.loglevel)
    refusal = catalogue_refusal(settings)
    if refusal is not None:
        logging.getLogger("relay.worker").error("%s", refusal)
        return 2
    only = {p.strip() for p in args.providers.split(",") if p.strip()} if args.providers else None
    run_worker(
        settings,
        only,
        args.concurrency,
        args.loglevel,
        args.hostname,
        metrics_port=args.metrics_port,
        metrics_address=args.metrics_address,
    )
    return 0
