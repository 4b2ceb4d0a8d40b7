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
from dataclasses import asdict, dataclass

from rich.console import Console
from rich.table import Table

from relay_core.catalogue.models import ProviderConfig
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


def key_state(provider: ProviderConfig) -> str:
    from relay_core.catalogue.availability import key_present

    if provider.api_key_env is None:
        return "not needed"
    return "yes" if key_present(provider) else "no"


async def gather(settings: Settings) -> FarmStatus:
    """Everything ``relay status`` shows (raises ``redis.RedisError`` when Redis is down)."""
    from redis.asyncio import Redis

    from relay_core.breaker import Breaker
    from relay_core.breaker import RedisBackend as BreakerRedis
    from relay_core.catalogue.loader import enabled_providers, resolve_catalogue
    from relay_core.limits import Limiter, RedisBackend
    from relay_core.metrics.live import read_snapshot

    catalogue, _source = resolve_catalogue(settings)
    enabled, disabled = enabled_providers(catalogue, settings.mode)
    redis = Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5)
    try:
        limiter = Limiter.from_settings(settings, RedisBackend(redis))
        breaker = Breaker.from_settings(settings, BreakerRedis(redis))
        snap = await read_snapshot(
            redis, settings.key_prefix, enabled, limiter, breaker, now=time.time()
        )
    finally:
        await redis.aclose()
    live = {p.name: p for p in snap.providers}
    rows = [ProviderRow(p.name, True, key_state(p), live=live.get(p.name)) for p in enabled]
    rows += [ProviderRow(p.name, False, key_state(p), reason=why) for p, why in disabled]
    return FarmStatus(settings.redis_url, rows, snap)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _levels(provider: str, levels: tuple[LimitLevel, ...]) -> str:
    lines = []
    for lv in levels:
        scope = "" if lv.scope == provider else lv.scope.removeprefix(provider + "/") + " "
        lines.append(f"{scope}{lv.limit} {_num(lv.available)}/{_num(lv.capacity)}")
    return "\n".join(lines) or "no limits"


def _breaker(live: ProviderLive) -> str:
    shown = live.breaker.replace("_", "-")
    style = {"closed": "green", "half-open": "yellow"}.get(shown, "red")
    text = f"[{style}]{shown}[/]"
    for model, state in live.model_breakers.items():
        text += f"\n{model}: {state.replace('_', '-')}"
    return text


def providers_table(status: FarmStatus) -> Table:
    table = Table(title="Providers", title_justify="left")
    table.add_column("provider", no_wrap=True)
    table.add_column("enabled")
    table.add_column("key")
    table.add_column("breaker")
    table.add_column("limits left", no_wrap=True)
    table.add_column("queued", justify="right")
    table.add_column("in flight", justify="right")
    for row in status.providers:
        if row.live is None:
            reason = f"[dim]{row.reason or ''}[/]"
            table.add_row(row.name, "[red]no[/]", row.key, "-", reason, "-", "-")
            continue
        live = row.live
        table.add_row(
            row.name,
            "[green]yes[/]",
            row.key,
            _breaker(live),
            _levels(row.name, live.levels),
            str(live.queue_depth),
            str(live.in_flight),
        )
    return table


def workers_table(status: FarmStatus) -> Table:
    table = Table(title="Workers", title_justify="left")
    for col in ("worker", "pid", "providers", "in flight", "last beat"):
        table.add_column(col)
    for w in status.snapshot.workers:
        age = max(0.0, status.snapshot.at - w.at)
        table.add_row(
            w.name, str(w.pid), ", ".join(w.providers), str(w.in_flight), f"{age:.0f} s ago"
        )
    return table


def batches_table(status: FarmStatus) -> Table:
    table = Table(title="Batches", title_justify="left")
    for col in ("batch", "status", "done", "failed", "in flight", "providers"):
        table.add_column(col, justify="right" if col in ("failed", "in flight") else "left")
    for b in status.snapshot.batches:
        rc = b.request_counts
        done = rc.completed + rc.failed
        share = f" ({100 * done / rc.total:.0f}%)" if rc.total else ""
        served = ", ".join(
            f"{name} {p.completed}" + (f"/{p.failed} failed" if p.failed else "")
            for name, p in sorted(b.providers.items())
        )
        table.add_row(
            b.id,
            b.status.value,
            f"{done}/{rc.total}{share}",
            str(rc.failed),
            str(b.in_flight),
            served,
        )
    return table


def render(status: FarmStatus, console: Console) -> None:
    console.print(f"Relay farm on {status.redis_url}")
    console.print(providers_table(status))
    if status.snapshot.workers:
        console.print(workers_table(status))
    else:
        console.print("[red]No live workers[/]: start one with `relay worker` (or `relay up`).")
    if status.snapshot.batches:
        console.print(batches_table(status))
    else:
        console.print("Batches: none running")


def as_json(status: FarmStatus) -> str:
    data = asdict(status)
    data["snapshot"]["workers"] = [w.model_dump() for w in status.snapshot.workers]
    data["snapshot"]["batches"] = [b.model_dump(mode="json") for b in status.snapshot.batches]
    return json.dumps(data, indent=2, default=str)


def run(args: argparse.Namespace) -> int:
    import redis

    from relay_cli.runfile import farm_settings

    settings = farm_settings()
    console = Console()
    while True:
        try:
            status = asyncio.run(gather(settings))
        except (redis.RedisError, OSError) as exc:
            print(
                f"relay status: Redis at {settings.redis_url} is not reachable "
                f"({type(exc).__name__}); is the farm running (relay up)?",
                file=sys.stderr,
            )
            return 1
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
