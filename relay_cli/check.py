"""``relay check``: one tiny request to every model of the catalogue, a PASS/FAIL table.

Calls each provider directly (not through the farm), in parallel, asking for one token, so
users learn which of their keys and models work today. A failure says why: Relay's error class
and the upstream status. Models of disabled providers are SKIPped with the reason (a missing
key), and so are embeddings-only models. Exit status 1 when anything FAILed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass
from enum import StrEnum

from rich.console import Console
from rich.table import Table

from relay_core.catalogue.models import ModelConfig, ProviderConfig
from relay_core.errors import RelayError, UpstreamTimeout
from relay_core.providers.base import Provider
from relay_core.settings import Settings

PROMPT = "Reply with the word OK."
DEFAULT_TIMEOUT_S = 20.0


class Verdict(StrEnum):
    passed = "PASS"
    failed = "FAIL"
    skipped = "SKIP"


@dataclass(frozen=True)
class CheckResult:
    provider: str
    model: str
    verdict: Verdict
    reason: str = ""
    latency_ms: float | None = None


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("check", help="send a tiny request to every model: PASS/FAIL per model")
    p.add_argument("--provider", action="append", help="only this provider (repeatable)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per call")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def failure_reason(exc: BaseException) -> str:
    """Relay's error class, the upstream (or Relay) status, and the message's first line."""
    if isinstance(exc, RelayError):
        status = exc.upstream_status or exc.status_code
        first = exc.message.strip().splitlines()[0] if exc.message.strip() else ""
        return f"{type(exc).__name__} ({status}): {first[:120]}"
    return f"{type(exc).__name__}: {str(exc)[:120]}"


async def check_model(provider: Provider, model: ModelConfig, timeout_s: float) -> CheckResult:
    from relay_core.schemas.chat import ChatCompletionRequest

    name = provider.config.name
    if model.embeddings:
        return CheckResult(name, model.id, Verdict.skipped, "embeddings model (no chat)")
    request = ChatCompletionRequest.model_validate(
        {"model": model.id, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 1}
    )
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            await provider.complete(request, model.id)
    except TimeoutError:
        exc: BaseException = UpstreamTimeout(f"no answer in {timeout_s:.0f} s")
        return CheckResult(name, model.id, Verdict.failed, failure_reason(exc))
    except Exception as exc:  # every failure is a row in the table, never a crash
        return CheckResult(name, model.id, Verdict.failed, failure_reason(exc))
    ms = (time.perf_counter() - started) * 1000
    return CheckResult(name, model.id, Verdict.passed, "", round(ms, 1))


async def check_all(
    settings: Settings, only: set[str] | None, timeout_s: float
) -> list[CheckResult]:
    """Every model of the catalogue (or of ``only``), checked concurrently."""
    from relay_core.catalogue.loader import enabled_providers, resolve_catalogue
    from relay_core.providers.registry import build_provider, make_http_client

    catalogue, _source = resolve_catalogue(settings)
    enabled, disabled = enabled_providers(catalogue, settings.mode)
    chosen: list[ProviderConfig] = [p for p in enabled if only is None or p.name in only]
    skipped = [
        CheckResult(p.name, m.id, Verdict.skipped, f"provider disabled: {why}")
        for p, why in disabled
        if only is None or p.name in only
        for m in p.models
    ]
    async with make_http_client() as http:
        providers = [build_provider(p, http, p.api_key()) for p in chosen]
        calls = [check_model(pr, m, timeout_s) for pr in providers for m in pr.config.models]
        results = list(await asyncio.gather(*calls))
    return results + skipped


def table(results: list[CheckResult]) -> Table:
    colours = {Verdict.passed: "green", Verdict.failed: "red", Verdict.skipped: "yellow"}
    out = Table(title="relay check", title_justify="left")
    for col in ("provider", "model", "result", "ms", "reason"):
        out.add_column(col, justify="right" if col == "ms" else "left")
    for r in results:
        ms = f"{r.latency_ms:.0f}" if r.latency_ms is not None else ""
        verdict = f"[{colours[r.verdict]}]{r.verdict}[/]"
        out.add_row(r.provider, r.model, verdict, ms, r.reason)
    return out


def run(args: argparse.Namespace) -> int:
    from relay_cli.farms import farm_settings
    from relay_core.catalogue.loader import CatalogueError

    settings = farm_settings()
    only = set(args.provider) if args.provider else None
    try:
        results = asyncio.run(check_all(settings, only, args.timeout))
    except CatalogueError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
    else:
        console = Console()
        console.print(table(results))
        counts = {v: sum(r.verdict is v for r in results) for v in Verdict}
        console.print(", ".join(f"{n} {v}" for v, n in counts.items()))
    return 1 if any(r.verdict is Verdict.failed for r in results) else 0
