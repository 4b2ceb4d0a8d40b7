"""``relay up``: the whole farm on one machine, with one command.

Redis (found or embedded, AOF on), the provider simulator when no provider key is configured,
one worker serving every provider queue, the API on 127.0.0.1:8000 and Flower on :5555. Ctrl-C
stops every child; a second ``relay up`` while one runs says so instead of fighting over ports.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import httpx

from relay_cli import embedded_redis
from relay_cli.runfile import RunInfo, clear_running, read_running, write_running
from relay_cli.supervise import Supervisor

EMBEDDED_REDIS_PORT = 6399
START_TIMEOUT_S = 60.0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("up", help="run the whole farm: Redis, API, worker, Flower (+ simulator)")
    p.add_argument("--host", default=None, help="API bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="API port (default 8000)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--concurrency", type=int, default=None, help="threads per worker")
    p.add_argument("--flower-port", type=int, default=5555)
    p.add_argument("--no-flower", action="store_true")
    p.add_argument("--sim-port", type=int, default=8900)
    p.add_argument("--log-format", choices=["text", "json"], default="text")
    p.add_argument("--demo", action="store_true", help="simulated providers even if keys exist")
    p.set_defaults(func=run)


def _wait(what: str, check: Callable[[], bool], sup: Supervisor) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if check():
            return
        dead = sup.dead()
        if dead is not None:
            raise SystemExit(f"relay up: {dead.name} exited (code {dead.proc.returncode})")
        time.sleep(0.1)
    raise SystemExit(f"relay up: {what} did not become ready in {START_TIMEOUT_S:.0f} s")


def _http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    return check


def _client_host(bind: str) -> str:
    """Where a local client reaches a server bound to ``bind`` (any-address: loopback)."""
    return "127.0.0.1" if bind in {"::", "0." * 3 + "0"} else bind


def _relay(*args: str) -> list[str]:
    return [sys.executable, "-m", "relay_cli.main", *args]


def _start_redis(sup: Supervisor, env: dict[str, str], data_dir: Path) -> str:
    url = os.environ.get("RELAY_REDIS_URL")
    if url and embedded_redis.reachable(url):
        sup.say(f"redis: using {url}")
        return url
    if url:
        sup.say(f"redis: RELAY_REDIS_URL={url} is not reachable; starting an embedded one")
    binary, origin = embedded_redis.server_binary()
    port = EMBEDDED_REDIS_PORT
    if not embedded_redis.port_free(port):
        raise SystemExit(f"relay up: port {port} is taken; set RELAY_REDIS_URL to use that Redis")
    sup.start("redis", embedded_redis.server_argv(binary, data_dir / "redis", port), env)
    url = f"redis://127.0.0.1:{port}/0"
    _wait("redis", lambda: embedded_redis.reachable(url, 0.5), sup)
    sup.say(f"redis: started from {origin} at {url} (data in {data_dir / 'redis'}, AOF on)")
    return url


def _needs_simulator(args: argparse.Namespace, env: dict[str, str]) -> bool:
    from relay_core.catalogue.loader import enabled_providers, resolve_catalogue
    from relay_core.settings import Settings

    if args.demo:
        return True
    settings = Settings()
    catalogue, source = resolve_catalogue(settings)
    if settings.demo or source.is_demo:
        return True
    enabled, _ = enabled_providers(catalogue, settings.mode)
    return not enabled


def _start(args: argparse.Namespace, sup: Supervisor, data_dir: Path) -> RunInfo:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    redis_url = _start_redis(sup, env, data_dir)
    env["RELAY_REDIS_URL"] = redis_url
    sim_url = None
    if _needs_simulator(args, env):
        sim_url = f"http://127.0.0.1:{args.sim_port}"
        env.update(RELAY_DEMO="1", RELAY_SIM_URL=sim_url)
        sup.say("no provider keys configured: serving the demo catalogue of SIMULATED providers")
        sup.start("sim", _relay("sim", "--port", str(args.sim_port)), env)
        _wait("simulator", _http_ok(f"{sim_url}/_sim/health"), sup)
    log = ["--log-format", args.log_format]
    for i in range(args.workers):
        conc = ["--concurrency", str(args.concurrency)] if args.concurrency else []
        name = "worker" if args.workers == 1 else f"worker{i + 1}"
        sup.start(name, _relay("worker", "--hostname", f"{name}@%h", *conc, *log), env)
    host = args.host or env.get("RELAY_HOST", "127.0.0.1")
    port = args.port or int(env.get("RELAY_PORT", "8000"))
    api_url = f"http://{_client_host(host)}:{port}"
    sup.start("api", _relay("api", "--host", host, "--port", str(port), *log), env)
    _wait("api", _http_ok(f"{api_url}/health"), sup)
    flower_url = None
    if not args.no_flower:
        flower_url = _start_flower(sup, env, redis_url, args.flower_port)
    _wait("a worker", _http_ok(f"{api_url}/ready"), sup)
    return RunInfo(
        pid=os.getpid(),
        redis_url=redis_url,
        api_url=api_url,
        flower_url=flower_url,
        sim_url=sim_url,
        demo=sim_url is not None,
    )


def _start_flower(sup: Supervisor, env: dict[str, str], redis_url: str, port: int) -> str:
    user = env.get("RELAY_FLOWER_USER", "relay")
    password = env.get("RELAY_FLOWER_PASSWORD", "relay")
    argv = [
        sys.executable,
        "-m",
        "celery",
        "--broker",
        redis_url,
        "flower",
        f"--port={port}",
        "--address=127.0.0.1",
        f"--basic-auth={user}:{password}",
    ]
    sup.start("flower", argv, env)
    return f"http://127.0.0.1:{port}"


def _banner(sup: Supervisor, info: RunInfo) -> None:
    lines = [
        "Relay is up.",
        f"  API      {info.api_url}/v1   (use as the OpenAI base_url)",
        f"  Metrics  {info.api_url}/metrics",
    ]
    if info.flower_url:
        lines.append(f"  Flower   {info.flower_url}   (user/password: RELAY_FLOWER_USER/PASSWORD)")
    lines.append(f"  Redis    {info.redis_url}")
    if info.demo:
        lines.append("  Providers: SIMULATED (demo catalogue; no provider keys configured)")
    lines.append("Press Ctrl-C to stop.")
    for line in lines:
        sup.say(line)


def run(args: argparse.Namespace) -> int:
    from relay_core.settings import Settings

    data_dir = Settings().data_dir
    running = read_running(data_dir)
    if running is not None:
        print(
            f"relay up: already running (pid {running.pid}), API at {running.api_url}",
            file=sys.stderr,
        )
        return 1
    sup = Supervisor()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        info = _start(args, sup, data_dir)
        write_running(data_dir, info)
        _banner(sup, info)
        while (dead := sup.dead()) is None:
            time.sleep(0.2)
        sup.say(f"{dead.name} exited (code {dead.proc.returncode}); stopping the farm")
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        sup.say("stopping…")
        sup.stop_all()
        clear_running(data_dir)
        sup.say("stopped.")
