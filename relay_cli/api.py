"""``relay api``: serve the OpenAI-compatible API with uvicorn."""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

from relay_cli.exposure import MAKE_ONE, is_loopback, weak_secret
from relay_cli.logs import setup_logging
from relay_cli.startup import catalogue_refusal

if TYPE_CHECKING:
    from relay_core.settings import Settings

log = logging.getLogger("relay.api")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("api", help="serve the OpenAI-compatible API")
    p.add_argument("--host", help="bind address (default RELAY_HOST, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default RELAY_PORT, 8000)")
    p.add_argument("--log-format", choices=["text", "json"], default=None)
    p.add_argument("--loglevel", default="INFO")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from relay_api.app import create_app
    from relay_api.http_protocol import HttpBounds, protocol
    from relay_core.settings import Settings

    settings = Settings()
    setup_logging("api", args.log_format or settings.log_format, args.loglevel)
    host = args.host or settings.host
    port = args.port or settings.port
    refusal = catalogue_refusal(settings)
    if refusal is not None:
        log.error("%s", refusal)
        return 2
    problem = public_bind_problem(settings, host)
    if problem is not None:
        log.error("refusing to bind to %s %s, or bind 127.0.0.1", host, problem)
        return 2
    if not settings.api_keys:
        log.info("no gateway keys (RELAY_API_KEYS): serving on %s only, without auth", host)
    if settings.metrics_token is None and not is_loopback(host):
        log.warning(
            "GET /metrics is open to anyone who reaches %s: set RELAY_METRICS_TOKEN to ask for it",
            host,
        )
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        # Bounded headers and read deadlines; refusals and malformed HTTP as OpenAI's JSON.
        http=protocol(HttpBounds.from_settings(settings)),
        log_config=None,
        access_log=False,
        # SIGTERM: stop accepting, let open requests finish (bounded), then shut down.
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
    )
    return 0


def public_bind_problem(settings: Settings, host: str) -> str | None:
    """Why the API must not listen on ``host`` with these gateway keys (None: it may)."""
    if is_loopback(host):
        return None
    if not settings.api_keys:
        return "without gateway keys: set RELAY_API_KEYS"
    for n, key in enumerate(settings.api_keys, 1):
        why = weak_secret(key.get_secret_value(), settings.min_secret_chars)
        if why is not None:
            return (
                f"with a weak gateway key (key {n} of RELAY_API_KEYS is {why}): "
                f"set long random keys ({MAKE_ONE})"
            )
    return None
