"""``relay config check [FILE]``: validate a catalogue and show what this environment enables.

Exit 0 when the catalogue is valid (even if some providers are disabled), 1 with one line per
problem on stderr when it is not. Only whether a key is present is ever shown, never its value.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from relay_core.catalogue.availability import Availability
    from relay_core.catalogue.models import Catalogue, Limits, ProviderConfig
    from relay_core.catalogue.source import CatalogueSource
    from relay_core.settings import Mode

_LIMIT_FIELDS = ("rpm", "rpd", "tpm", "tpd", "concurrency")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("config", help="work with the provider catalogue")
    config_sub = parser.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = config_sub.add_parser(
        "check",
        help="validate a catalogue and show which providers are enabled",
        description="Validate FILE (default: RELAY_CONFIG, else ./relay.yaml, else the demo "
        "catalogue) and show each provider, its limits and whether it is enabled here.",
    )
    check.add_argument("file", nargs="?", type=Path, help="the catalogue YAML file to check")
    check.add_argument(
        "--mode",
        choices=["free", "auto", "paid"],
        help="tier mode to evaluate (default: RELAY_MODE, else free)",
    )
    check.add_argument(
        "-v", "--verbose", action="store_true", help="list model ids and per-model limits"
    )
    check.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from relay_core.catalogue.loader import (
        CatalogueError,
        CatalogueOrigin,
        CatalogueSource,
        enabled_providers,
        load_catalogue,
        resolve_catalogue,
    )
    from relay_core.settings import Mode, Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        for error in exc.errors():
            name = "RELAY_" + "_".join(str(part) for part in error["loc"]).upper()
            print(f"{name}: {error['msg']}", file=sys.stderr)
        return 1
    mode = Mode(args.mode) if args.mode else settings.mode
    try:
        if args.file is not None:
            catalogue = load_catalogue(args.file)
            source = CatalogueSource(CatalogueOrigin.argument, args.file)
        else:
            catalogue, source = resolve_catalogue(settings)
    except CatalogueError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        count = len(exc.problems)
        print(
            f"{count} problem{'s' if count != 1 else ''}: the catalogue is invalid.",
            file=sys.stderr,
        )
        return 1
    print_report(catalogue, source, mode, enabled_providers(catalogue, mode), args.verbose)
    return 0


def _limits(limits: Limits | None) -> str:
    if limits is None:
        return ""
    parts = [f"{name} {value:,}" for name in _LIMIT_FIELDS if (value := getattr(limits, name))]
    return " · ".join(parts)


def _limits_cell(provider: ProviderConfig, verbose: bool) -> str:
    lines = [_limits(provider.limits)] if _limits(provider.limits) else []
    per_model = [(m.id, _limits(m.limits)) for m in provider.models if _limits(m.limits)]
    if per_model and verbose:
        lines += [f"{model_id}: {text}" for model_id, text in per_model]
    elif per_model:
        lines.append("+ per model (-v)" if lines else "per model (-v)")
    return "\n".join(lines) or "none set"


def _key_cell(provider: ProviderConfig) -> str:
    from relay_core.catalogue.availability import key_present

    if not provider.needs_key():
        return "not needed"
    return "yes" if key_present(provider) else "no"


def print_report(
    catalogue: Catalogue,
    source: CatalogueSource,
    mode: Mode,
    availability: Availability,
    verbose: bool,
) -> None:
    """The provider table, then one line per disabled provider, then a summary."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from relay_core.catalogue.availability import describe_disabled

    console = Console(file=sys.stdout, highlight=False)
    reasons = {p.name: reason for p, reason in availability.disabled}
    console.print(Text(f"Catalogue: {source} (mode: {mode})"), soft_wrap=True)
    table = Table()
    for column in ("provider", "api", "tier", "models", "limits", "key", "enabled"):
        table.add_column(column, overflow="fold")
    for p in catalogue.providers:
        models = "\n".join(m.id for m in p.models) if verbose else str(len(p.models))
        enabled = "no" if p.name in reasons else "yes"
        cells = (
            p.name,
            p.api,
            str(p.tier),
            models,
            _limits_cell(p, verbose),
            _key_cell(p),
            enabled,
        )
        table.add_row(*(Text(cell) for cell in cells))
    console.print(table)
    for provider, reason in availability.disabled:
        console.print(Text(describe_disabled(provider, reason)), soft_wrap=True)
    total = len(catalogue.providers)
    noun = "provider" if total == 1 else "providers"
    summary = f"valid: {total} {noun}, {len(availability.enabled)} enabled"
    if not availability.enabled:
        summary += " — none can serve requests here; set the keys named in the table"
    console.print(Text(summary), soft_wrap=True)
