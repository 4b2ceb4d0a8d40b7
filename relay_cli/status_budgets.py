"""``relay status``'s budgets: each limit being spent, its pace and its time to exhaustion."""

from __future__ import annotations

from rich import box
from rich.table import Table

from relay_core.forecast.horizon import Horizon


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def spent(horizons: list[Horizon]) -> list[Horizon]:
    """The limits being spent now, soonest exhausted first."""
    busy = [h for h in horizons if h.pace_per_min > 0]
    return sorted(busy, key=lambda h: (h.exhausted_in_s is None, h.exhausted_in_s or 0.0))


def budgets_table(horizons: list[Horizon]) -> Table:
    table = Table(
        title="Budgets (at the recent pace)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
    )
    table.add_column("scope", overflow="fold")
    table.add_column("limit", no_wrap=True)
    table.add_column("left", justify="right", no_wrap=True)
    table.add_column("pace/min", justify="right", no_wrap=True)
    table.add_column("exhausted in", justify="right", no_wrap=True)
    for h in spent(horizons):
        left = f"{h.left:.0f}/{h.of:.0f}"
        table.add_row(
            h.scope, h.limit.value, left, f"{h.pace_per_min:.1f}", _duration(h.exhausted_in_s)
        )
    return table
