"""``relay status``: the farm on one screen.

Providers (enabled, key present, breaker, what is left of each limit, queue depth, calls in
flight), live workers, and running batches — all read from Redis, so it works from any machine
that reaches the farm's Redis. Finds the farm of a local ``relay up`` by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass, field

from rich import box
from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from relay_cli.status_budgets import budgets_table, spent
from relay_core.catalogue.models import ProviderConfig
from relay_core.forecast.horizon import Horizon
from relay_core.metrics.live import FarmSnapshot, LimitLevel, ProviderLive
from relay_core.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("status", help="providers, workers and batches on one screen")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--watch", type=float, metavar="SECONDS", help="refresh every SECONDS")
    p.set_defaults(func=run)


@dataclass
class ProviderRow:
    name: str
    enabled: bool
    key: str  # yes | no | not needed
    reason: str | None = None  # why it is disabled
    live: ProviderLive | None = None


@dataclass
class FarmStatus:
    redis_url: str
    providers: list[ProviderRow]
    snapshot: FarmSnapshot
    found_by: str = ""
    # Every provider limit and key quota with its time to exhaustion (relay_core/forecast).
    budgets: list[Horizon] = field(
        default_factory=list
    )  # where the Redis URL came from (relay_cli.farms.Located.describe)


def key_state(provider: ProviderConfig) -> str:
    from relay_core.catalogue.availability import key_present

    if provider.api_key_env is None:
        return "not needed"
    return "yes" if key_present(provider) else "no"


async def gather(settings: Settings, found_by: str = "") -> FarmStatus:
    """Everything ``relay status`` shows (raises ``redis.RedisError`` when Redis is down)."""
    from redis.asyncio import Redis

    from relay_core.breaker import Breaker
    from relay_core.breaker import RedisBackend as BreakerRedis
    from relay_core.catalogue.loader import enabled_providers, resolve_catalogue
    from relay_core.forecast.read import key_horizons, provider_horizons
    from relay_core.forecast.spend import SpendStore
    from relay_core.limits import Limiter, RedisBackend
    from relay_core.limits.quota import KeyQuotas
    from relay_core.metrics.live import read_snapshot

    catalogue, _source = resolve_catalogue(settings)
    enabled, disabled = enabled_providers(catalogue, settings.mode)
    redis = Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5)
    try:
        limiter = Limiter.from_settings(settings, RedisBackend(redis))
        breaker = Breaker.from_settings(settings, BreakerRedis(redis))
        now = time.time()
        snap = await read_snapshot(redis, settings.key_prefix, enabled, limiter, breaker, now=now)
        spend = SpendStore(redis, settings.key_prefix, settings.forecast_tau_s)
        budgets = await provider_horizons(limiter, spend, enabled, now)
        owners = await spend.owners()
        budgets += await key_horizons(KeyQuotas(limiter, settings), spend, owners, now)
    finally:
        await redis.aclose()
    live = {p.name: p for p in snap.providers}
    rows = [ProviderRow(p.name, True, key_state(p), live=live.get(p.name)) for p in enabled]
    rows += [ProviderRow(p.name, False, key_state(p), reason=why) for p, why in disabled]
    return FarmStatus(settings.redis_url, rows, snap, found_by, budgets)


def _num(value: float) -> str:
    """A limit's figure, short: 990, 0.4, 14.4k, 500k, 1.2M."""
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M".replace(".0M", "M")
    if value >= 10_000:
        return (
            f"{value / 1000:.1f}k".replace(".0k", "k")
            if value < 100_000
            else f"{value / 1000:.0f}k"
        )
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _levels(levels: list[LimitLevel]) -> str:
    return "\n".join(f"{lv.limit} {_num(lv.available)}/{_num(lv.capacity)}" for lv in levels)


def _state(breaker: str) -> str:
    shown = breaker.replace("_", "-")
    style = {"closed": "green", "half-open": "yellow"}.get(shown, "red")
    return f"[{style}]{shown}[/]"


def _table(title: str) -> Table:
    """A table that fits 80 columns: no vertical rules, a rule under the header only."""
    return Table(
        title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False
    )


def _provider_rows(table: Table, live: ProviderLive) -> None:
    """The provider's own row, then one indented row per model with a breaker or limits."""
    by_model: dict[str, list[LimitLevel]] = {}
    own: list[LimitLevel] = []
    for lv in live.levels:
        model = lv.scope.removeprefix(live.name + "/") if lv.scope != live.name else None
        (own if model is None else by_model.setdefault(model, [])).append(lv)
    own_levels = _levels(own) or ("" if by_model else "no limits")
    queued, in_flight = str(live.queue_depth), str(live.in_flight)
    table.add_row(live.name, _state(live.breaker), own_levels, queued, in_flight)
    for model in sorted(set(by_model) | set(live.model_breakers)):
        breaker = live.model_breakers.get(model)
        state = _state(breaker) if breaker else ""
        name = _indent(Text(model, style="dim", overflow="fold"))
        table.add_row(name, state, _levels(by_model.get(model, [])))


def providers_table(status: FarmStatus) -> Table:
    """The enabled providers (the disabled ones are listed below it, with the reason)."""
    table = _table("Providers")
    table.add_column("provider", overflow="fold", min_width=8)
    table.add_column("breaker", no_wrap=True, min_width=9)
    table.add_column("limits left", no_wrap=True)
    table.add_column("queued", justify="right", no_wrap=True)
    table.add_column("in flight", justify="right", no_wrap=True)
    for row in status.providers:
        if row.live is not None:
            _provider_rows(table, row.live)
    return table


def disabled_lines(status: FarmStatus) -> list[str]:
    return [
        f"{row.name}: {row.reason or 'disabled'}"
        for row in status.providers
        if row.live is None and not row.enabled
    ]


def workers_table(status: FarmStatus) -> Table:
    """The live workers by machine: a host's name on its first row, a line between hosts;
    each worker's name without its ``@host`` (said already), and the provider queues it
    serves."""
    table = _table("Workers")
    table.add_column("host", overflow="fold")
    table.add_column("worker", overflow="fold")
    table.add_column("pid", no_wrap=True)
    table.add_column("queues", overflow="fold")
    table.add_column("in flight", justify="right", no_wrap=True)
    table.add_column("last beat", justify="right", no_wrap=True)
    ordered = sorted(status.snapshot.workers, key=lambda w: (w.host, w.name))
    for i, w in enumerate(ordered):
        age = max(0.0, status.snapshot.at - w.at)
        first = i == 0 or ordered[i - 1].host != w.host
        last = i == len(ordered) - 1 or ordered[i + 1].host != w.host
        table.add_row(
            (w.host or "?") if first else "",
            w.name.removesuffix(f"@{w.host}") if w.host else w.name,
            str(w.pid),
            ", ".join(w.providers),
            str(w.in_flight),
            f"{age:.0f} s ago",
            end_section=last,
        )
    return table


def batches_table(status: FarmStatus) -> Table:
    table = _table("Batches")
    table.add_column("batch", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("done", no_wrap=True)
    table.add_column("failed", justify="right", no_wrap=True)
    table.add_column("in flight", justify="right", no_wrap=True)
    for b in status.snapshot.batches:
        rc = b.request_counts
        done = rc.completed + rc.failed
        share = f" ({100 * done / rc.total:.0f}%)" if rc.total else ""
        table.add_row(
            b.id, b.status.value, f"{done}/{rc.total}{share}", str(rc.failed), str(b.in_flight)
        )
    return table


def served_lines(status: FarmStatus) -> list[str]:
    """Each running batch's lines per provider (below the table: a batch id is 30
    characters, and a providers column beside it would leave no room at 80 columns)."""
    lines = []
    for b in status.snapshot.batches:
        served = ", ".join(
            f"{name} {p.completed}" + (f"/{p.failed} failed" if p.failed else "")
            for name, p in sorted(b.providers.items())
        )
        if served:
            lines.append(f"{b.id}: {served}")
    return lines


def failing_lines(status: FarmStatus) -> list[str]:
    """Each batch whose output files could not be written, and why (below the table)."""
    return [
        f"{b.id}: output not written ({b.finalize_failures} attempt(s) failed): {b.finalize_error}"
        for b in status.snapshot.batches
        if b.finalize_error
    ]


def _indent(text: Text) -> Padding:
    return Padding(text, (0, 0, 0, 2), expand=False)


def _indented(console: Console, lines: list[str]) -> None:
    """Plain lines, indented, wrapped lines indented further (at spaces, never mid-word)."""
    for line in lines:
        console.print(_indent(Text(line)))


def render(status: FarmStatus, console: Console) -> None:
    where = f" ({status.found_by})" if status.found_by else ""
    console.print(f"Relay farm on {status.redis_url}{where}")
    if any(row.live is not None for row in status.providers):
        console.print(providers_table(status))
    else:
        console.print("[red]No provider is enabled[/] (relay config check says why).")
    disabled = disabled_lines(status)
    if disabled:
        console.print("Disabled providers:")
        _indented(console, disabled)
    if status.snapshot.workers:
        console.print(workers_table(status))
    else:
        console.print("[red]No live workers[/]: start one with `relay worker` (or `relay up`).")
    if status.snapshot.batches:
        console.print(batches_table(status))
        _indented(console, served_lines(status))
        failing = failing_lines(status)
        if failing:
            console.print("[red]Batches whose output could not be written[/] (retrying):")
            _indented(console, failing)
    else:
        console.print("Batches: none running")
    if spent(status.budgets):
        console.print(budgets_table(status.budgets))
    else:
        console.print("Budgets: nothing spent lately")


def as_json(status: FarmStatus) -> str:
    data = asdict(status)
    data["snapshot"]["workers"] = [w.model_dump() for w in status.snapshot.workers]
    data["snapshot"]["batches"] = [b.model_dump(mode="json") for b in status.snapshot.batches]
    data["budgets"] = [h.model_dump(mode="json") for h in status.budgets]
    return json.dumps(data, indent=2, default=str)


def run(args: argparse.Namespace) -> int:
    import redis

    from relay_cli.farms import locate

    found = locate()
    if found.ambiguous:
        print(f"relay status: {found.several()}", file=sys.stderr)
        return 1
    settings = found.settings
    console = Console()
    while True:
        try:
            status = asyncio.run(gather(settings, found.describe()))
        except (redis.RedisError, OSError) as exc:
            print(
                f"relay status: Redis at {settings.redis_url} is not reachable "
                f"({type(exc).__name__}); it came from {found.describe()}. "
                "Is the farm running (relay up)? Else set RELAY_REDIS_URL to its Redis.",
                file=sys.stderr,
            )
            return 1
        except KeyboardInterrupt:
            return 0
        if args.json:
            print(as_json(status))
        else:
            if args.watch:
                console.clear()
            render(status, console)
        if not args.watch:
            return 0
        try:
            time.sleep(args.watch)
        except KeyboardInterrupt:
            return 0
