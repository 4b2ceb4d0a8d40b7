"""``relay flower``: the Flower dashboard for Relay's workers, with basic auth from settings.

Runs Flower with Relay's own Celery configuration, so its Broker page and
``/api/queues/length`` list every provider queue even before a worker comes up. The password
(``RELAY_FLOWER_PASSWORD``) is passed in-process, never on a command line ``ps`` would show.

A Flower login can shut workers down and send tasks (docs/security.md), so beyond loopback
``relay flower`` refuses the default password, placeholders and short ones, as ``relay api``
refuses a public bind without keys; and failed logins lock a client out for a while
(relay_cli/flower_guard.py).
"""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

from relay_cli.exposure import MAKE_ONE, is_loopback, weak_secret
from relay_cli.logs import setup_logging

if TYPE_CHECKING:
    from relay_core.settings import Settings

log = logging.getLogger("relay.flower")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("flower", help="serve the Flower dashboard (basic auth from settings)")
    p.add_argument("--address", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=5555, help="port (default 5555)")
    p.set_defaults(func=run)


def flower_argv(address: str, port: int, user: str, password: str) -> list[str]:
    return [
        f"--address={address}",
        f"--port={port}",
        f"--basic-auth={user}:{password}",
        "--purge_offline_workers=60",
    ]


def public_bind_problem(settings: Settings, address: str) -> str | None:
    """Why Flower must not listen on ``address`` with this password (None: it may)."""
    if is_loopback(address):
        return None
    why = weak_secret(settings.flower_password.get_secret_value(), settings.min_secret_chars)
    if why is None:
        return None
    return f"RELAY_FLOWER_PASSWORD is {why}: set a long random one ({MAKE_ONE})"


def run(args: argparse.Namespace) -> int:
    from relay_cli.flower_guard import serve
    from relay_cli.login_brake import LoginBrake
    from relay_core.catalogue.loader import enabled_providers, resolve_catalogue
    from relay_core.dispatch.broker import create_celery
    from relay_core.settings import Settings

    settings = Settings()
    setup_logging("flower", settings.log_format)
    problem = public_bind_problem(settings, args.address)
    if problem is not None:
        log.error("refusing to bind Flower to %r: %s, or bind 127.0.0.1", args.address, problem)
        return 2
    catalogue, _source = resolve_catalogue(settings)
    enabled, _disabled = enabled_providers(catalogue, settings.mode)
    app = create_celery(settings, [p.name for p in enabled])
    user, password = settings.flower_user, settings.flower_password.get_secret_value()
    brake = LoginBrake(settings.flower_lockout_s, settings.flower_lockout_max_s)
    serve(app, flower_argv(args.address, args.port, user, password), f"{user}:{password}", brake)
    return 0
