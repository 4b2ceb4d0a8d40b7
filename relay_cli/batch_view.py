"""What ``relay batch`` shows: progress until a batch ends, its summary, its results on disk.

On a terminal, progress is a live bar (done / failed / rate / time left, per provider). When
the output is not a terminal (a pipe, a log file, CI) a live bar would be cut to 80 columns
and leave its last line open, so plain lines are printed instead, at most one every
:data:`PLAIN_EVERY_S` seconds and on every change of status. The summary always starts on a
line of its own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from relay_cli.batch_api import ApiError, call

if TYPE_CHECKING:  # imported when a command runs: registering stays cheap
    import httpx
    from rich.console import Console
    from rich.table import Table

TERMINAL = {"completed", "failed", "expired", "cancelled"}
POLL_S = 1.0
PLAIN_EVERY_S = 10.0


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def provider_table(progress: dict[str, Any]) -> Table:
    from rich.table import Table

    table = Table("provider", "done", "failed", box=None)
    for name, p in sorted(progress["providers"].items()):
        table.add_row(name, f"{p['completed']:,}", f"{p['failed']:,}")
    return table


@dataclass
class Rate:
    """Lines per second since the first poll that saw any line finished."""

    started: float
    first: tuple[int, float] | None = None

    def of(self, done: int) -> float:
        now = time.monotonic()
        self.first = self.first if self.first is not None else (done, now)
        elapsed = max(1e-6, now - max(self.started, self.first[1]))
        return (done - self.first[0]) / elapsed


def time_left(progress: dict[str, Any], per_s: float) -> float | None:
    """The farm's ETA for the batch (from its measured rate), else this poll's own."""
    eta = progress.get("eta_seconds")
    if eta is not None:
        return float(eta)
    c = progress["request_counts"]
    left = c["total"] - c["completed"] - c["failed"]
    return left / per_s if per_s > 0 and c["total"] else None


def watch(http: httpx.Client, console: Console, batch_id: str) -> dict[str, Any]:
    """Progress until the batch is final; returns the final batch."""
    if not console.is_terminal:
        return _watch_plain(http, console, batch_id)
    return _watch_live(http, console, batch_id)


def _watch_plain(http: httpx.Client, console: Console, batch_id: str) -> dict[str, Any]:
    rate = Rate(time.monotonic())
    last: tuple[str, float] | None = None  # (status, when) of the last line printed
    shown: tuple[str, int, int] | None = None
    while True:
        p = call(http, "GET", f"/v1/batches/{batch_id}/progress")
        c = p["request_counts"]
        done, total, status = c["completed"] + c["failed"], c["total"], p["status"]
        per_s = rate.of(done)
        state = (status, done, c["failed"])
        now = time.monotonic()
        due = last is None or status != last[0] or now - last[1] >= PLAIN_EVERY_S
        if state != shown and due:
            left = time_left(p, per_s)
            eta = f", about {duration(left)} left" if left is not None else ""
            console.print(
                f"{batch_id} {status}: {done:,}/{total:,} done, {c['failed']:,} failed, "
                f"{per_s:.1f}/s{eta}",
                highlight=False,
                soft_wrap=True,
            )
            shown, last = state, (status, now)
        if status in TERMINAL:
            return dict(call(http, "GET", f"/v1/batches/{batch_id}"))
        time.sleep(POLL_S)


def _watch_live(http: httpx.Client, console: Console, batch_id: str) -> dict[str, Any]:
    from rich.console import Group
    from rich.live import Live
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
    )

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("failed {task.fields[failed]}  {task.fields[rate]}/s  {task.fields[eta]}"),
        console=console,
    )
    task = bar.add_task(batch_id, total=None, failed=0, rate="0.0", eta="")
    rate = Rate(time.monotonic())
    with Live(bar, console=console, refresh_per_second=4) as live:
        while True:
            p = call(http, "GET", f"/v1/batches/{batch_id}/progress")
            c = p["request_counts"]
            done = c["completed"] + c["failed"]
            per_s = rate.of(done)
            left = time_left(p, per_s) if p["status"] not in TERMINAL else None
            bar.update(
                task,
                completed=done,
                total=c["total"] or None,
                failed=c["failed"],
                rate=f"{per_s:.1f}",
                eta=f"{duration(left)} left" if left is not None else "",
                description=f"{batch_id} {p['status']}",
            )
            live.update(Group(bar, provider_table(p)))
            if p["status"] in TERMINAL:
                return dict(call(http, "GET", f"/v1/batches/{batch_id}"))
            time.sleep(POLL_S)


def summary(console: Console, batch: dict[str, Any]) -> None:
    c = batch["request_counts"]
    console.print(
        f"batch {batch['id']}: [bold]{batch['status']}[/bold] — {c['completed']:,} done, "
        f"{c['failed']:,} failed of {c['total']:,}",
        soft_wrap=True,
    )
    for error in (batch.get("errors") or {}).get("data", [])[:10]:
        where = f"line {error['line']}: " if error.get("line") else ""
        console.print(f"  [red]{error['code']}[/red] {where}{error['message']}")


def download(
    http: httpx.Client,
    console: Console,
    batch: dict[str, Any],
    output: Path | None,
    errors: Path | None,
) -> None:
    for which, dest in (("output", output), ("errors", errors)):
        if dest is None:
            continue
        path = f"/v1/batches/{batch['id']}/results"
        with http.stream("GET", path, params={"which": which}) as r, dest.open("wb") as f:
            if r.status_code >= 400:
                raise ApiError(f"GET {path}: {r.status_code}")
            for chunk in r.iter_bytes():
                f.write(chunk)
        console.print(f"{which} written to {dest}")
