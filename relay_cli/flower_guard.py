"""Flower's HTTP server with a brake on guessing its basic-auth password.

Flower checks the password of every request and answers a wrong one with a 401 at once, as
often as it is asked. Here Flower's Tornado application sits behind a router that sees each
request's headers first: credentials that are wrong count as a failed login of the client's
address (:class:`~relay_cli.login_brake.LoginBrake`), and a client that is locked out gets a
429 with ``Retry-After`` without its credentials being looked at or Flower running at all.
Requests without credentials (the healthcheck, a browser's first visit) pass untouched.

:func:`serve` does what Flower's own command does (options, settings, banner, the event loop),
except that the server it starts is this router's.
"""

from __future__ import annotations

import atexit
import base64
import binascii
import contextlib
import hmac
import logging
import math
import signal
from typing import Any

from celery import Celery
from tornado import httputil
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.routing import Router
from tornado.web import RequestHandler

from relay_cli.login_brake import LoginBrake

log = logging.getLogger("relay.flower")


class LockedOut(RequestHandler):
    """The answer to every request of a locked-out client: 429, when to come back."""

    def initialize(self, retry_after: float) -> None:
        self.retry_after = math.ceil(retry_after)

    def check_xsrf_cookie(self) -> None:
        """Nothing is changed here, so there is no forgery to refuse (it would be a 403)."""

    def prepare(self) -> None:
        self.set_status(429)
        self.set_header("Retry-After", str(self.retry_after))
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(f"too many failed logins: retry in {self.retry_after} s\n")


def basic_credentials(header: str) -> bytes | None:
    """``user:password`` from an ``Authorization: Basic`` header (None: not one)."""
    try:
        scheme, encoded = header.split()
        return base64.b64decode(encoded, validate=True) if scheme == "Basic" else None
    except (ValueError, binascii.Error):
        return None


class BrakeRouter(Router):
    """Routes to Flower (``flower``, its Tornado application), or to :class:`LockedOut`."""

    def __init__(self, flower: Any, credentials: str, brake: LoginBrake) -> None:
        self.flower = flower
        self.credentials = credentials.encode()
        self.brake = brake

    def find_handler(
        self, request: httputil.HTTPServerRequest, **kwargs: Any
    ) -> httputil.HTTPMessageDelegate | None:
        header = request.headers.get("Authorization")
        client = request.remote_ip or "unknown"
        if header is not None:
            wait = self.brake.locked_for(client)
            if wait > 0:
                return self.flower.get_handler_delegate(  # type: ignore[no-any-return]
                    request, LockedOut, {"retry_after": wait}
                )
            given = basic_credentials(header)
            if given is not None and hmac.compare_digest(given, self.credentials):
                self.brake.succeeded(client)
            else:
                self.brake.failed(client)
                locked = self.brake.locked_for(client)
                if locked > 0:
                    log.warning(
                        "failed Flower logins from %s: locked out for %.0f s", client, locked
                    )
        return self.flower.find_handler(request, **kwargs)  # type: ignore[no-any-return]


def serve(app: Celery, argv: list[str], credentials: str, brake: LoginBrake) -> None:
    """Run Flower for ``app`` with ``argv`` (Flower's ``--option=value`` flags) until SIGTERM."""
    from flower import command
    from flower.app import Flower
    from flower.urls import settings
    from tornado.options import options

    command.apply_env_options()
    command.apply_options("relay flower", argv)
    command.extract_settings()
    command.setup_logging()
    flower = Flower(capp=app, options=options, **settings)
    atexit.register(flower.stop)
    signal.signal(signal.SIGTERM, command.sigterm_handler)
    sockets = bind_sockets(options.port, address=options.address)
    router = BrakeRouter(flower, credentials, brake)
    ssl = settings.get("ssl_options")  # FLOWER_CERTFILE and FLOWER_KEYFILE, as Flower reads them
    server = HTTPServer(router, ssl_options=ssl, xheaders=options.xheaders)
    server.add_sockets(sockets)
    command.print_banner(app, ssl is not None, sockets[0].getsockname()[1])
    with contextlib.suppress(KeyboardInterrupt, SystemExit):  # SIGTERM, Ctrl-C: the end
        flower.start()
