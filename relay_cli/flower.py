"""``relay flower``: the Flower dashboard for Relay's workers, with basic auth from settings.

Runs Flower with Relay's own Celery configuration, so its Broker page and
``/api/queues/length`` list every provider queue even before a worker comes up. The password
(``RELAY_FLOWER_PASSWORD``) is passed in-process, never on a command line ``ps`` would show.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("flower", help="serve the Flower dashboard (basic auth from settings)")
    p.add_argument("--address", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=5555, help="port (default 5555)")
    p.set_defaults(func=run)


def flower_argv(address: str, port: int, user: str, password: str) -> list[str]:
    return [
        "flower",
        f"--address={address}",
        f"--port={port}",
        f"--basic-auth={user}:{password}",
        "--purge_offline_workers=60",
    ]


def run(args: argparse.Namespace) -> int:
    from relay_core.catalogue.loader import enabled_providers, resolve_catalogue
    from relay_core.dispatch.broker import create_celery
    from relay_core.settings import Settings

    settings = Settings()
    catalogue, _source = resolve_catalogue(settings)
    enabled, _disabled = enabled_providers(catalogue, settings.mode)
    app = create_celery(settings, [p.name for p in enabled])
    password = settings.flower_password.get_secret_value()
    app.start(flower_argv(args.address, args.port, settings.flower_user, password))
    return 0
