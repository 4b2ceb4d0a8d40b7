"""The ``relay`` command: one sub-command per module in this package.

Each module named in ``COMMANDS`` exposes ``register(subparsers)`` which adds its parser and
sets ``func`` (called with the parsed namespace, returning an exit code). Modules are imported
only when their command runs, except for registration, which must stay cheap.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMANDS = ["config_cmd", "sim", "api", "worker", "up", "flower", "status", "check", "batch"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relay", description="Relay: one OpenAI-compatible endpoint over pooled LLM tiers."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"relay_cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
