"""Run the simulator in-process, in a background thread: for tests, demos and benchmarks.

    with SimServer(SimConfig.from_catalogue(catalogue)) as sim:
        httpx.get(f"{sim.url}/_sim/health")

``port=0`` picks a free port. Start-up waits for uvicorn to say it is listening (no polling
with sleeps); stopping releases hanging requests and joins the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from types import TracebackType

import uvicorn
from starlette.applications import Starlette

from relay_sim.app import create_app, sim_state
from relay_sim.config import SimConfig, sim_base_url
from relay_sim.state import Clock, SimState


def uvicorn_config(
    app: Starlette, host: str, port: int, log_level: str = "warning"
) -> uvicorn.Config:
    """Uvicorn tuned for the simulator: uvloop + httptools when installed, no access log."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        log_config=None,
        access_log=False,
        lifespan="off",
        ws="none",
        timeout_graceful_shutdown=2,
        backlog=4096,
    )


class _Uvicorn(uvicorn.Server):
    """Uvicorn that tells another thread when it is listening, and on which loop."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        try:
            await super().startup(sockets)
        finally:
            self.ready.set()


class SimServer:
    """The simulator for ``config`` served on ``host:port`` from a background thread."""

    def __init__(
        self,
        config: SimConfig,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        clock: Clock | None = None,
        startup_timeout_s: float = 10.0,
    ) -> None:
        self.config = config
        self.app = create_app(config, clock=clock)
        self.state: SimState = sim_state(self.app)
        self._host = host
        self._port = port
        self._timeout = startup_timeout_s
        self._server: _Uvicorn | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` once started."""
        if self._url is None:
            raise RuntimeError("the simulator has not started")
        return self._url

    def base_url(self, provider: str) -> str:
        """The ``base_url`` a catalogue gives ``provider`` to reach it here."""
        config = self.config.provider(provider)
        if config is None:
            raise KeyError(provider)
        return sim_base_url(self.url, provider, config.api)

    def start(self) -> SimServer:
        if self._thread is not None:
            raise RuntimeError("a SimServer starts once")
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        self._socket = sock
        host, port = sock.getsockname()[:2]
        self._url = (
            f"http://[{host}]:{port}" if family == socket.AF_INET6 else f"http://{host}:{port}"
        )
        server = _Uvicorn(uvicorn_config(self.app, self._host, self._port))
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="relay-sim", daemon=True
        )
        self._thread.start()
        if not server.ready.wait(self._timeout) or not server.started:
            self.stop()
            raise RuntimeError("the simulator did not start")
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        if server.loop is not None and not server.loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                server.loop.call_soon_threadsafe(self.state.closing.set)
        server.should_exit = True
        thread.join(self._timeout)
        if thread.is_alive():
            server.force_exit = True
            thread.join(self._timeout)
        if self._socket is not None:
            self._socket.close()
        self._server = None

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> SimServer:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)
