"""``relay sim``: serve the provider simulator in the foreground.

Simulates every provider of a catalogue (``--config FILE``, else the built-in demo catalogue)
and prints the ``base_url`` each one answers at.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from relay_core.catalogue.models import Catalogue
    from relay_sim.config import SimConfig


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "sim",
        help="serve the provider simulator",
        description="Serve simulated LLM providers (OpenAI, Gemini, Anthropic and Ollama wire "
        "formats) for demos, tests and benchmarks.",
    )
    parser.add_argument("--host", default=None, help="address to bind (default: from sim_url)")
    parser.add_argument("--port", type=int, default=None, help="port (default: from sim_url)")
    parser.add_argument(
        "--config", type=Path, default=None, help="catalogue to simulate (default: the demo one)"
    )
    parser.add_argument(
        "--window-s",
        type=float,
        default=None,
        help="length of the RPM/TPM sliding window in seconds (default 60; limits scale to it)",
    )
    parser.set_defaults(func=run)


def _load(path: Path) -> Catalogue | None:
    """The catalogue at ``path``, or None after printing what is wrong with it."""
    from relay_core.catalogue.loader import CatalogueError, load_catalogue

    try:
        return load_catalogue(path)
    except CatalogueError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None


def build_config(catalogue: Catalogue, window_s: float | None) -> SimConfig:
    from relay_sim.config import SimConfig

    overrides: dict[str, object] = {} if window_s is None else {"window_s": window_s}
    return SimConfig.from_catalogue(catalogue, **overrides)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from relay_core.catalogue.demo import demo_catalogue
    from relay_core.settings import Settings
    from relay_sim.app import create_app
    from relay_sim.config import sim_base_url
    from relay_sim.server import uvicorn_config

    default = urlsplit(Settings().sim_url)
    host: str = args.host or default.hostname or "127.0.0.1"
    port: int = args.port if args.port is not None else default.port or 8900
    sim_url = f"http://{host}:{port}"
    catalogue = _load(args.config) if args.config is not None else demo_catalogue(sim_url)
    if catalogue is None:
        return 2
    config = build_config(catalogue, args.window_s)
    print(f"relay sim: {len(config.providers)} simulated providers at {sim_url}")
    for p in config.providers:
        models = ", ".join(m.id for m in p.models)
        print(f"  {p.name:<16} {p.api:<10} {sim_base_url(sim_url, p.name, p.api)}  [{models}]")
    print(f"  admin: {sim_url}/_sim/stats  {sim_url}/_sim/providers/{{name}}  {sim_url}/_sim/reset")
    uvicorn.Server(uvicorn_config(create_app(config), host, port, log_level="info")).run()
    return 0
