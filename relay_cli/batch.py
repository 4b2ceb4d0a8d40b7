"""``relay batch``: submit bulk jobs and watch them, over the API (docs/batch.md).

    relay batch submit questions.jsonl [--model M] [--wait] [--output results.jsonl]
    relay batch status BATCH_ID [--watch]      relay batch list
    relay batch cancel BATCH_ID                relay batch retry BATCH_ID [--wait]
    relay batch wait BATCH_ID [--output F] [--errors F]
    relay batch results BATCH_ID [--output F] [--errors F]
    relay batch estimate questions.jsonl [--model M]

``submit`` also takes a text file (one prompt per line) or a CSV (a ``prompt`` column) and
builds the JSONL itself; every file must be UTF-8 (:mod:`relay_cli.batch_input`). Which API
and key: :mod:`relay_cli.batch_api`; what is shown: :mod:`relay_cli.batch_view`.

Ctrl-C while waiting stops the waiting, not the batch: the command says so, prints the exact
command that follows it again (``relay batch wait ...``) and exits 130.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from relay_cli.batch_api import ApiError, call, client
from relay_cli.batch_input import InputError, input_file
from relay_cli.batch_view import download, duration, provider_table, summary, watch

if TYPE_CHECKING:  # imported when a command runs: registering stays cheap
    import httpx
    from rich.console import Console

INTERRUPTED = 130  # the shell's code for a command ended by SIGINT


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
    w = cmds.add_parser("wait", help="progress until a batch ends, then write its results")
    w.add_argument("batch_id")
    w.add_argument("--output", type=Path, help="write the results here")
    w.add_argument("--errors", type=Path, help="write the failed lines here")
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


class Interrupted(Exception):
    """Ctrl-C while waiting; the message says what goes on without us and how to follow it."""


def run(args: argparse.Namespace) -> int:
    import httpx
    from rich.console import Console

    console, err = Console(), Console(stderr=True, highlight=False)
    name = f"relay batch {args.batch_command}"
    if getattr(args, "wait", False) or getattr(args, "watch", False) or name.endswith("wait"):
        # A shell that starts a command in the background leaves SIGINT ignored.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    action = ACTIONS[args.batch_command]
    try:
        with client(args) as http:
            return action(args, http, console)
    except InputError as exc:
        err.print(f"[red]{name}: {exc}[/red]", soft_wrap=True)
        return 1
    except Interrupted as exc:
        err.print(f"\n{name}: interrupted. {exc}", soft_wrap=True)
        return INTERRUPTED
    except KeyboardInterrupt:
        err.print(f"\n{name}: interrupted (`relay batch list` shows what was created).")
        return INTERRUPTED
    except (ApiError, httpx.HTTPError, OSError) as exc:
        console.print(f"[red]{name}: {exc}[/red]")
        return 1


def command(args: argparse.Namespace, *words: str | Path | None) -> str:
    """The ``relay batch ...`` command line that does ``words`` against the same API."""
    argv = ["relay", "batch"]
    if args.base_url:
        argv += ["--base-url", str(args.base_url)]
    argv += [str(w) for w in words if w is not None]
    return shlex.join(argv)


def _flags(output: Path | None, errors: Path | None) -> list[str | Path | None]:
    return ["--output", output] * bool(output) + ["--errors", errors] * bool(errors)


# ---- actions -----------------------------------------------------------------------------


def submit(args: argparse.Namespace, http: httpx.Client, console: Console) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        source = input_file(args.file, args.model, Path(tmp))
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
    return _finish(args, http, console, batch["id"], output=args.output, errors=args.errors)


def _finish(
    args: argparse.Namespace,
    http: httpx.Client,
    console: Console,
    batch_id: str,
    *,
    output: Path | None = None,
    errors: Path | None = None,
) -> int:
    final = _watch(args, http, console, batch_id, "wait", batch_id, *_flags(output, errors))
    summary(console, final)
    if output or errors:
        try:
            download(http, console, final, output, errors)
        except KeyboardInterrupt:
            again = command(args, "results", batch_id, *_flags(output, errors))
            message = f"Batch {batch_id} is done; write its results with:\n  {again}"
            raise Interrupted(message) from None
    return 0 if final["status"] == "completed" else 2


def _watch(
    args: argparse.Namespace,
    http: httpx.Client,
    console: Console,
    batch_id: str,
    *follow: str | Path | None,
) -> dict[str, object]:
    """:func:`watch`, where Ctrl-C says the batch keeps running and how to follow it."""
    try:
        return watch(http, console, batch_id)
    except KeyboardInterrupt:
        again, cancel_it = command(args, *follow), command(args, "cancel", batch_id)
        raise Interrupted(
            f"Batch {batch_id} keeps running on the farm (Ctrl-C stopped only this command). "
            f"Follow it with:\n  {again}\nor stop it with:\n  {cancel_it}"
        ) from None


def wait(args: argparse.Namespace, http: httpx.Client, console: Console) -> int:
    return _finish(args, http, console, args.batch_id, output=args.output, errors=args.errors)


def status(args: argparse.Namespace, http: httpx.Client, console: Console) -> int:
    if args.watch:
        follow = ("status", args.batch_id, "--watch")
        summary(console, _watch(args, http, console, args.batch_id, *follow))
        return 0
    summary(console, call(http, "GET", f"/v1/batches/{args.batch_id}"))
    progress = call(http, "GET", f"/v1/batches/{args.batch_id}/progress")
    if progress.get("rate_per_s") is not None and progress.get("eta_seconds") is not None:
        console.print(
            f"{progress['rate_per_s']:.1f} lines/s: about {duration(progress['eta_seconds'])} left"
        )
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
    return _finish(args, http, console, batch["id"]) if args.wait else 0


def estimate(args: argparse.Namespace, http: httpx.Client, console: Console) -> int:
    from rich.table import Table

    from relay_core.batch.client.demand import route_demand

    with tempfile.TemporaryDirectory() as tmp:
        counts = route_demand(input_file(args.file, args.model, Path(tmp)), args.model)
    if not counts:
        console.print("[red]no requests in that file[/red]")
        return 1
    requests = [c.model_dump(exclude_none=True) for c in counts]
    est = call(http, "POST", "/v1/batches/estimate", json={"requests": requests})

    console.print(
        f"{est['lines']:,} requests at {est['rate_per_s']:.2f}/s: about "
        f"[bold]{duration(est['estimated_seconds'])}[/bold]"
    )
    if est["backlog_lines"]:
        console.print(
            f"{est['backlog_lines']:,} lines of your running batches share that capacity: about "
            f"{duration(est['estimated_seconds_with_backlog'])} with them"
        )
    table = Table("provider", "model", "requests/s", "bound by", "tokens/line", "healthy")
    for t in est["targets"]:
        table.add_row(
            t["provider"],
            t["model"],
            f"{t['rate_per_s']:.2f}",
            t["binding"],
            f"{t['tokens_per_line']:,.0f}",
            "yes" if t["healthy"] else "no",
        )
    console.print(table)
    for p in est["providers"]:
        if p["daily_lines_left"] is not None:
            console.print(
                f"{p['provider']}: {p['daily_lines_left']:,.0f} lines left today "
                f"(daily cap resets in {duration(p['daily_resets_in_s'])})"
            )
    for warning in est["warnings"]:
        console.print(f"[yellow]{warning}[/yellow]")
    return 0


ACTIONS = {
    "submit": submit,
    "status": status,
    "wait": wait,
    "list": list_batches,
    "cancel": cancel,
    "results": results,
    "retry": retry,
    "estimate": estimate,
}
