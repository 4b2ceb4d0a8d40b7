"""``relay batch``: submit bulk jobs and watch them, over the API (docs/batch.md).

    relay batch submit questions.jsonl [--model M] [--wait] [--output results.jsonl]
    relay batch status BATCH_ID [--watch]      relay batch list
    relay batch cancel BATCH_ID                relay batch retry BATCH_ID [--wait]
    relay batch results BATCH_ID [--output F] [--errors F]
    relay batch estimate questions.jsonl [--model M]

``submit`` also takes a text file (one prompt per line) or a CSV (a ``prompt`` column) and
builds the JSONL itself. The API is ``--base-url``, else ``RELAY_API_URL``, else the running
``relay up``'s, else http://127.0.0.1:8000; the key ``--api-key`` or ``RELAY_API_KEY``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when a command runs: registering stays cheap
    import httpx
    from rich.console import Console
    from rich.table import Table

TERMINAL = {"completed", "failed", "expired", "cancelled"}
DEFAULT_URL = "http://127.0.0.1:8000"
POLL_S = 1.0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("batch", help="submit, watch and fetch batch jobs")
    p.add_argument("--base-url", help="the Relay API (default: RELAY_API_URL, relay up, :8000)")
    p.add_argument("--api-key", help="gateway key (default: RELAY_API_KEY)")
    cmds = p.add_subparsers(dest="batch_command", metavar="ACTION", required=True)
    s = cmds.add_parser("submit", help="upload a file and start a batch")
    s.add_argument("file", type=Path, help="a JSONL batch file, or prompts as text or CSV")
    s.add_argument("--model", help="model for prompts (and for JSONL lines that name none)")
    s.add_argument("--window", default="24h", help="completion window (default 24h)")
    s.add_argument("--wait", action="store_true", help="show progress until it ends")
    s.add_argument("--output", type=Path, help="with --wait: write the results here")
    s.add_argument("--errors", type=Path, help="with --wait: write the failed lines here")
    for name, text in (("status", "show a batch"), ("cancel", "cancel a batch")):
        c = cmds.add_parser(name, help=text)
        c.add_argument("batch_id")
        if name == "status":
            c.add_argument("--watch", action="store_true", help="live progress until it ends")
    cmds.add_parser("list", help="your batches, newest first").add_argument(
        "--limit", type=int, default=20
    )
    r = cmds.add_parser("results", help="download a batch's results (partial while running)")
    r.add_argument("batch_id")
    r.add_argument("--output", type=Path, help="default: BATCH_ID.results.jsonl")
    r.add_argument("--errors", type=Path, help="default: BATCH_ID.errors.jsonl")
    t = cmds.add_parser("retry", help="a new batch from a batch's failed and expired lines")
    t.add_argument("batch_id")
    t.add_argument("--wait", action="store_true")
    e = cmds.add_parser("estimate", help="how long a file would take at today's capacity")
    e.add_argument("file", type=Path)
    e.add_argument("--model", help="model for prompts (and for JSONL lines that name none)")
    p.set_defaults(func=run)


def base_url(args: argparse.Namespace) -> str:
    if args.base_url:
        return str(args.base_url)
    from_env = os.environ.get("RELAY_API_URL")
    if from_env:
        return from_env
    from relay_cli.runfile import read_running
    from relay_core.settings import Settings

    running = read_running(Settings().data_dir)
    return running.api_url if running is not None and running.api_url else DEFAULT_URL


def client(args: argparse.Namespace) -> httpx.Client:
    import httpx

    key = args.api_key or os.environ.get("RELAY_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=base_url(args).rstrip("/"), headers=headers, timeout=120)


class ApiError(Exception):
    pass


def call(http: httpx.Client, method: str, path: str, **kw: Any) -> Any:
    r = http.request(method, path, **kw)
    if r.status_code >= 400:
        try:
            message = r.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = r.text[:300]
        raise ApiError(f"{method} {path}: {r.status_code}: {message}")
    return r.json()


def run(args: argparse.Namespace) -> int:
    import httpx
    from rich.console import Console

    console = Console()
    action = ACTIONS[args.batch_command]
    try:
        with client(args) as http:
            return action(args, http, console)
    except (ApiError, httpx.HTTPError, OSError) as exc:
        console.print(f"[red]relay batch {args.batch_command}: {exc}[/red]")
        return 1


# ---- actions -----------------------------------------------------------------------------


def _input_file(path: Path, model: str | None, tmp: Path) -> Path:
    from relay_core.batch.client.prompts import build_jsonl, kind_of

    if kind_of(path) == "jsonl":
        return path
    built = tmp / f"{path.stem}.jsonl"
    count = build_jsonl(path, built, model or "meta-model")
    print(f"built {count:,} requests from {path.name}")
    return built


def submit(args: argparse.Namespace, http: httpx.Client, console: Console) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        source = _input_file(args.file, args.model, Path(tmp))
        with source.open("rb") as f:
            uploaded = call(
                http,
                "POST",
                "/v1/files",
                files={"file": (source.name, f)},
                data={"purpose": "batch"},
            )
    body = {
        "input_file_id": uploaded["id"],
        "endpoint": "/v1/chat/completions",
        "completion_window": args.window,
    }
    if args.model and source == args.file:  # a JSONL file: the default for lines without one
        body["model"] = args.model
    batch = call(http, "POST", "/v1/batches", json=body)
    console.print(f"batch [bold]{batch['id']}[/bold] submitted ({uploaded['bytes']:,} bytes)")
    if not args.wait:
        return 0
    return _finish(http, console, batch["id"], args.output, args.errors)


def _finish(
    http: httpx.Client, console: Console, batch_id: str, output: Path | None, errors: Path | None
) -> int:
    final = watch(http, console, batch_id)
    summary(console, final)
    if output or errors:
        download(http, console, final, output, errors)
    return 0 if final["status"] == "completed" else 2


def status(args: argparse.Namespace, http: httpx.Client, console: Console) -> int:
    if args.watch:
        summary(console, watch(http, console, args.batch_id))
        return 0
    summary(console, call(http, "GET", f"/v1/batches/{args.batch_id}"))
    progress = call(http, "GET", f"/v1/batches/{args.batch_id}/progress")
    console.print(provider_table(progress))
    return 0


def list_batches(args: argparse.Namespace, http: httpx.Client, console: Console) -> int:
    from rich.table import Column, Table

    page = call(http, "GET", "/v1/batches", params={"limit": args.limit})
    table = Table(Column("id", no_wrap=True), "status", "done", "failed", "total", "created")
    for b in page["data"]:
        c = b["request_counts"]
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(b["created_at"]))
        table.add_row(
            b["id"], b["status"], str(c["completed"]), str(c["failed"]), str(c["total"]), created
        )
    console.print(table)
    return 0


def cancel(args: argparse.Namespace, http: httpx.Client, console: Console) -> int:
    batch = call(http, "POST", f"/v1/batches/{args.batch_id}/cancel")
    console.print(f"batch {batch['id']}: {batch['status']}")
    return 0


def results(args: argparse.Namespace, http: httpx.Client, console: Console) -> int:
    batch = call(http, "GET", f"/v1/batches/{args.batch_id}")
    output = args.output or Path(f"{args.batch_id}.results.jsonl")
    errors = args.errors or Path(f"{args.batch_id}.errors.jsonl")
    download(http, console, batch, output, errors)
    return 0


def retry(args: argparse.Namespace, http: httpx.Client, console: Console) -> int:
    batch = call(http, "POST", f"/v1/batches/{args.batch_id}/retry")
    total = batch["request_counts"]["total"]
    console.print(f"batch [bold]{batch['id']}[/bold] retries {total:,} lines of {args.batch_id}")
    return _finish(http, console, batch["id"], None, None) if args.wait else 0


def estimate(args: argparse.Namespace, http: httpx.Client, console: Console) -> int:
    from rich.table import Table

    from relay_core.batch.client.prompts import route_counts

    with tempfile.TemporaryDirectory() as tmp:
        counts = route_counts(_input_file(args.file, args.model, Path(tmp)), args.model)
    if not counts:
        console.print("[red]no requests in that file[/red]")
        return 1
    requests = [
        {
            "model": r.model,
            "model_type": r.model_type,
            "model_scale": r.model_scale,
            "model_name": r.model_name,
            "count": n,
        }
        for r, n in counts.items()
    ]
    est = call(http, "POST", "/v1/batches/estimate", json={"requests": requests})

    console.print(
        f"{est['lines']:,} requests at {est['rate_per_s']:.2f}/s: about "
        f"[bold]{_duration(est['estimated_seconds'])}[/bold]"
    )
    if est["backlog_lines"]:
        console.print(
            f"{est['backlog_lines']:,} lines of your running batches share that capacity: about "
            f"{_duration(est['estimated_seconds_with_backlog'])} with them"
        )
    table = Table("provider", "model", "requests/s", "requests/day", "healthy")
    for t in est["targets"]:
        table.add_row(
            t["provider"],
            t["model"],
            f"{t['rate_per_s']:.2f}",
            str(t["rpd"] or "-"),
            "yes" if t["healthy"] else "no",
        )
    console.print(table)
    for warning in est["warnings"]:
        console.print(f"[yellow]{warning}[/yellow]")
    return 0


ACTIONS = {
    "submit": submit,
    "status": status,
    "list": list_batches,
    "cancel": cancel,
    "results": results,
    "retry": retry,
    "estimate": estimate,
}


# ---- display -----------------------------------------------------------------------------


def _duration(seconds: float) -> str:
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


def watch(http: httpx.Client, console: Console, batch_id: str) -> dict[str, Any]:
    """A live bar (done / failed / rate / ETA, per provider) until the batch is final."""
    from rich.console import Group
    from rich.live import Live
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("failed {task.fields[failed]}  {task.fields[rate]}/s"),
        TimeRemainingColumn(),
        console=console,
    )
    task = bar.add_task(batch_id, total=None, failed=0, rate="0.0")
    started, first_done = time.monotonic(), None
    with Live(bar, console=console, refresh_per_second=4) as live:
        while True:
            p = call(http, "GET", f"/v1/batches/{batch_id}/progress")
            c = p["request_counts"]
            done = c["completed"] + c["failed"]
            first_done = first_done if first_done is not None else (done, time.monotonic())
            elapsed = max(1e-6, time.monotonic() - max(started, first_done[1]))
            rate = (done - first_done[0]) / elapsed
            bar.update(
                task,
                completed=done,
                total=c["total"] or None,
                failed=c["failed"],
                rate=f"{rate:.1f}",
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
        f"{c['failed']:,} failed of {c['total']:,}"
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
