"""``relay up``: the whole farm on one machine, with one command.

Redis (found or embedded, AOF on), the provider simulator when no provider key is configured,
one worker serving every provider queue, the API on 127.0.0.1:8000 and Flower on :5555. Ctrl-C
(or SIGTERM) stops every child; a second ``relay up`` while one runs says so instead of
fighting over ports. See docs/operations.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from relay_cli import embedded_redis, farms
from relay_cli.runfile import (
    ChildInfo,
    RunInfo,
    clear_running,
    client_host,
    leftovers,
    read_info,
    up_lock,
    write_running,
)
from relay_cli.supervise import Supervisor, signal_group
from relay_cli.up_providers import (
    Probe,
    all_unreachable,
    disabled_lines,
    start_probes,
    unreachable_warning,
    wait_probes,
)
from relay_cli.up_wait import StartFailed, http_ok, wait_for
from relay_core.settings import Settings

if TYPE_CHECKING:
    from relay_core.catalogue.models import Catalogue
    from relay_core.catalogue.source import CatalogueSource

EMBEDDED_REDIS_PORT = 6399
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
STOP_MARGIN_S = 10.0  # beyond RELAY_SHUTDOWN_GRACE_S before a child is killed


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("up", help="run the whole farm: Redis, API, worker, Flower (+ simulator)")
    p.add_argument("--host", default=None, help="API bind address (default RELAY_HOST)")
    p.add_argument("--port", type=int, default=None, help="API port (default RELAY_PORT, 8000)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--concurrency", type=int, default=None, help="threads per worker")
    p.add_argument("--providers", default=None, help="provider queues to serve (default all)")
    p.add_argument("--flower-port", type=int, default=5555)
    p.add_argument("--no-flower", action="store_true")
    p.add_argument("--sim-port", type=int, default=8900)
    p.add_argument("--redis-port", type=int, default=EMBEDDED_REDIS_PORT)
    p.add_argument("--log-format", choices=["text", "json"], default=None)
    p.add_argument("--demo", action="store_true", help="simulated providers even if keys exist")
    p.set_defaults(func=run)


def _relay(*args: str) -> list[str]:
    return [sys.executable, "-m", "relay_cli.main", *args]


class Farm:
    """One ``relay up`` run: its settings, supervisor, environment and run file."""

    def __init__(self, args: argparse.Namespace, settings: Settings, data_dir: Path) -> None:
        self.args = args
        self.settings = settings
        self.data_dir = data_dir
        self.log_format: str = args.log_format or settings.log_format
        self.sup = Supervisor(log_format=self.log_format, log_dir=data_dir / "logs")
        self.env = {k: v for k, v in os.environ.items() if k != MULTIPROC_ENV}
        self.env.update(PYTHONUNBUFFERED="1", RELAY_DATA_DIR=str(data_dir))
        self.info = RunInfo(pid=os.getpid(), key_prefix=settings.key_prefix)
        self.probes: list[Probe] = []

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        child = self.sup.start(name, argv, env or self.env)
        cmd = " ".join(argv[:4])
        self.info.children.append(ChildInfo(name=name, pid=child.pid, cmd=cmd))
        write_running(self.data_dir, self.info)

    def wait(self, what: str, check: Callable[[], bool]) -> None:
        wait_for(what, check, self.sup)

    # ---- the parts, in start order -----------------------------------------------------------

    def providers(self) -> None:
        """Say which providers of the catalogue are on and why; probe the enabled ones (in
        the background: :meth:`banner` reports them)."""
        from relay_core.catalogue.loader import enabled_providers

        if self.args.demo or self.settings.demo:
            return
        catalogue, source = _catalogue(self.settings)
        if source.is_demo:
            return
        self.info.config = str(source.path.resolve()) if source.path else None
        enabled, disabled = enabled_providers(catalogue, self.settings.mode)
        total = len(enabled) + len(disabled)
        self.sup.say(f"providers: {len(enabled)} of {total} enabled in {source}")
        for line in disabled_lines(disabled):
            self.sup.say(f"  {line}")
        self.probes = start_probes(enabled)

    def redis(self) -> None:
        url = os.environ.get("RELAY_REDIS_URL")
        if url and embedded_redis.reachable(url):
            self.sup.say(f"redis: using {url}")
        else:
            if url:
                self.sup.say(f"redis: RELAY_REDIS_URL={url} is not reachable; starting one")
            url = self._embedded_redis()
        self.env["RELAY_REDIS_URL"] = self.info.redis_url = url

    def _embedded_redis(self) -> str:
        binary, origin = embedded_redis.server_binary()
        port = self.args.redis_port
        if not embedded_redis.port_free(port):
            raise StartFailed(f"port {port} is taken: pass --redis-port, or set RELAY_REDIS_URL")
        folder = self.data_dir / "redis"
        self.start("redis", embedded_redis.server_argv(binary, folder, port))
        url = f"redis://127.0.0.1:{port}/0"
        wait_for("redis", lambda: embedded_redis.reachable(url, 0.5), self.sup)
        self.sup.say(f"redis: started from {origin} at {url} (data in {folder}, AOF on)")
        return url

    def simulator(self) -> None:
        if not needs_simulator(self.args, self.settings):
            return
        url = f"http://127.0.0.1:{self.args.sim_port}"
        self.env.update(RELAY_DEMO="1", RELAY_SIM_URL=url)
        self.info.sim_url, self.info.demo = url, True
        self.sup.say(
            "no provider keys configured: serving the demo catalogue of SIMULATED providers "
            "(canned answers; see README 'Configure' for real ones)"
        )
        self.start("sim", _relay("sim", "--port", str(self.args.sim_port)))
        self.wait("the simulator", http_ok(f"{url}/_sim/health"))

    def metrics_env(self) -> dict[str, str]:
        """The environment of the API and workers: a fresh multiprocess metrics directory."""
        folder = self.data_dir / "metrics"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        self.info.metrics_dir = str(folder)
        return {**self.env, MULTIPROC_ENV: str(folder)}

    def workers(self, env: dict[str, str]) -> None:
        extra = ["--log-format", self.log_format]
        if self.args.concurrency:
            extra += ["--concurrency", str(self.args.concurrency)]
        if self.args.providers:
            extra += ["--providers", self.args.providers]
        for i in range(self.args.workers):
            name = "worker" if self.args.workers == 1 else f"worker{i + 1}"
            self.start(name, _relay("worker", "--hostname", f"{name}@%h", *extra), env)

    def api(self, env: dict[str, str]) -> None:
        host = self.args.host or self.settings.host
        port = self.args.port or self.settings.port
        url = f"http://{client_host(host)}:{port}"
        self.start("api", _relay("api", "--host", host, "--port", str(port), *self._log()), env)
        self.wait("the API", http_ok(f"{url}/health"))
        self.info.api_url = url

    def flower(self) -> None:
        if self.args.no_flower:
            return
        port = self.args.flower_port
        self.start("flower", _relay("flower", "--port", str(port)))
        self.info.flower_url = f"http://127.0.0.1:{port}"
        self.wait("Flower", http_ok(f"{self.info.flower_url}/healthcheck"))

    def _log(self) -> list[str]:
        return ["--log-format", self.log_format]

    def preflight(self) -> None:
        """Refuse early, and say why, when a port we need is taken."""
        host = self.args.host or self.settings.host
        wanted = [("API", host, self.args.port or self.settings.port, "--port")]
        if not self.args.no_flower:
            wanted.append(("Flower", "127.0.0.1", self.args.flower_port, "--flower-port"))
        if needs_simulator(self.args, self.settings):
            wanted.append(("simulator", "127.0.0.1", self.args.sim_port, "--sim-port"))
        for what, bind, port, flag in wanted:
            if not embedded_redis.port_free(port, bind):
                raise StartFailed(f"port {port} ({what}) is in use by another program: pass {flag}")

    def up(self) -> None:
        self.preflight()
        self.providers()
        self.redis()
        self.simulator()
        env = self.metrics_env()
        self.workers(env)
        self.api(env)
        self.flower()
        self.wait("a worker", http_ok(f"{self.info.api_url}/ready"))
        self.info.ready = True
        write_running(self.data_dir, self.info)

    def banner(self) -> None:
        info = self.info
        wait_probes(self.probes)
        for probe in self.probes:
            self.sup.say(f"  {probe.line()}")
        lines = [
            "Relay is up.",
            f"  API      {info.api_url}/v1   (the OpenAI base_url)",
            f"  Console  {info.api_url}/   (pool, batches, playground; API docs at /docs)",
            f"  Metrics  {info.api_url}/metrics",
        ]
        if info.flower_url:
            user = self.settings.flower_user
            lines.append(f"  Flower   {info.flower_url}   (user {user}, RELAY_FLOWER_PASSWORD)")
        lines.append(f"  Redis    {info.redis_url}")
        lines.append(f"  Logs     {self.data_dir / 'logs'}   Status: relay status")
        if info.demo:
            lines.append("  Providers: SIMULATED (demo catalogue; no provider keys configured)")
        elif self.probes:
            names = ", ".join(p.name for p in self.probes)
            lines.append(f"  Providers: {names}   (from {info.config})")
        lines.append("Press Ctrl-C to stop.")
        if all_unreachable(self.probes):
            lines += unreachable_warning(self.probes)
        for line in lines:
            self.sup.say(line)


def _catalogue(settings: Settings) -> tuple[Catalogue, CatalogueSource]:
    from relay_core.catalogue.loader import CatalogueError, resolve_catalogue

    try:
        return resolve_catalogue(settings)
    except CatalogueError as exc:
        raise StartFailed("the catalogue is not valid:\n" + "\n".join(exc.problems)) from None


def needs_simulator(args: argparse.Namespace, settings: Settings) -> bool:
    from relay_core.catalogue.loader import enabled_providers

    if args.demo or settings.demo:
        return True
    catalogue, source = _catalogue(settings)
    if source.is_demo:
        return True
    enabled, _ = enabled_providers(catalogue, settings.mode)
    return not enabled


def _stop_leftovers(data_dir: Path, sup: Supervisor) -> None:
    """Stop what a ``relay up`` that died without cleaning up left running."""
    info = read_info(data_dir)
    if info is None:
        return
    for child in leftovers(info):
        sup.say(f"stopping {child.name} (pid {child.pid}), left by an earlier relay up")
        signal_group(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while leftovers(info) and time.monotonic() < deadline:
        time.sleep(0.1)  # polling for exits, bounded by the deadline
    for child in leftovers(info):
        signal_group(child.pid, signal.SIGKILL)
    clear_running(data_dir)


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _serve(farm: Farm) -> int:
    sup = farm.sup
    # SIGINT too: a shell that starts `relay up` in the background leaves SIGINT ignored, and
    # Python then never turns Ctrl-C (or `kill -INT`) into KeyboardInterrupt.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    farms.register(farm.data_dir, os.getpid())  # so commands run elsewhere find this farm
    try:
        _stop_leftovers(farm.data_dir, sup)
        farm.up()
        farm.banner()
        while (dead := sup.dead()) is None:
            time.sleep(0.2)
        sup.say(f"{dead.name} exited (code {dead.proc.returncode}); stopping the farm")
        return 1
    except KeyboardInterrupt:
        return 0
    except StartFailed as exc:
        sup.say(f"cannot start: {exc}")
        return 1
    finally:
        sup.say("stopping…")
        sup.stop_all(farm.settings.shutdown_grace_s + STOP_MARGIN_S)
        clear_running(farm.data_dir)
        farms.unregister(os.getpid())
        sup.say("stopped.")


def run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"relay up: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    data_dir = settings.data_dir.resolve()
    with up_lock(data_dir) as mine:
        if not mine:
            info = read_info(data_dir)
            where = f" (pid {info.pid}), API at {info.api_url}" if info else ""
            print(f"relay up: already running{where}; stop it first", file=sys.stderr)
            return 1
        return _serve(Farm(args, settings, data_dir))
