"""``auto`` mode against all-paid: hard requests that the free providers often fail.

    .venv/bin/python -m bench.auto [--requests 500]     # or: make bench BENCH_ONLY=auto

Two free providers and one paid one serve the same model. The free ones answer 30 % of the
*hard* requests (``reasoning`` and ``coding``) empty, an unusable answer Relay counts against
them and fails over; everything else they answer well. The paid one answers everything well.
The mix: 40 % hard (20 % reasoning, 20 % coding), 60 % easy (chat, summarisation,
extraction, translation, 15 % each), ``clients`` at once, from a fresh farm (learning
included), with the farm's default exploration (5 %).

Three farms, the same requests: **all-paid** (only the paid provider in the catalogue),
**auto** (``RELAY_MODE=auto``, all three) and **free** (``RELAY_MODE=free``, for reference).
Per farm: the share of requests whose client got a usable answer (not empty, not the
simulator's wrong-answer marker), the share answered right at the first upstream call, the
paid upstream calls per request, and upstream calls per request. Prints a JSON-able dict.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx

from bench.harness import farm, provider
from relay_sim.quality import WRONG_MARKER

HARD = {"empty": 0.3}
FREE_QUALITY = {"reasoning": HARD, "coding": HARD}
MIX = (  # (family, prompt, share of 20)
    ("reasoning", "Solve for x: 3x + {i} = 22. Show your reasoning step by step.", 4),
    ("coding", "Write a Python function that reverses a linked list, case {i}.", 4),
    ("chat", "Tell me a joke about cats, {i}.", 3),
    ("summarisation", "Summarise this paragraph: the fox {i} jumps over the lazy dog.", 3),
    ("extraction", "Extract the name and age from: Alice {i} is 30 years old.", 3),
    ("translation", "Translate to French: good morning, my friend {i}.", 3),
)
PAID = ("paid",)


def all_three(sim_url: str) -> list[dict[str, Any]]:
    return [
        provider("free1", "openai", sim_url, tier="free"),
        provider("free2", "openai", sim_url, tier="free"),
        provider("paid", "openai", sim_url, tier="paid"),
    ]


def paid_only(sim_url: str) -> list[dict[str, Any]]:
    return [provider("paid", "openai", sim_url, tier="paid")]


def requests(n: int) -> list[tuple[str, str]]:
    """``n`` (family, prompt) in the mix's proportions, interleaved."""
    cycle = [(family, text) for family, text, share in MIX for _ in range(share)]
    order = [cycle[(k * 7) % len(cycle)] for k in range(len(cycle))]  # 7 is prime to 20
    return [(f, t.format(i=i)) for i, (f, t) in enumerate(order[i % len(order)] for i in range(n))]


async def series(url: str, asks: list[tuple[str, str]], clients: int) -> list[tuple[bool, bool]]:
    """(usable and right, answered at the first call) per request."""
    gate = asyncio.Semaphore(clients)
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:

        async def one(text: str) -> tuple[bool, bool]:
            body = {"model": "chat", "messages": [{"role": "user", "content": text}]}
            async with gate:
                r = await http.post("/v1/chat/completions", json=body)
            r.raise_for_status()
            content = r.json()["choices"][0]["message"]["content"] or ""
            good = bool(content.strip()) and WRONG_MARKER not in content
            return good, good and r.headers.get("x-relay-attempts") == "1"

        return list(await asyncio.gather(*(one(text) for _, text in asks)))


def one_farm(
    providers_fn: Callable[[str], list[dict[str, Any]]], mode: str, n: int, clients: int
) -> dict[str, Any]:
    asks = requests(n)
    with farm(providers_fn, concurrency=64, extra_env={"RELAY_MODE": mode}) as f:
        for name in ("free1", "free2"):
            if name in {p["name"] for p in providers_fn(f.sim_url)}:
                f.sim(name, quality=FREE_QUALITY)
        out = asyncio.run(series(f.api_url, asks, clients))
        stats = f.sim_stats()["providers"]
    calls = sum(p["requests"] for p in stats.values())
    paid = sum(stats[name]["requests"] for name in PAID if name in stats)
    hard = [ok for (family, _), (ok, _) in zip(asks, out, strict=True) if family in FREE_QUALITY]
    return {
        "success": round(sum(ok for ok, _ in out) / n, 4),
        "success_hard": round(sum(hard) / max(1, len(hard)), 4),
        "first_call_success": round(sum(first for _, first in out) / n, 4),
        "paid_calls_per_request": round(paid / n, 4),
        "upstream_calls_per_request": round(calls / n, 4),
    }


def run(n: int = 500, clients: int = 8) -> dict[str, Any]:
    paid = one_farm(paid_only, "paid", n, clients)
    auto = one_farm(all_three, "auto", n, clients)
    free = one_farm(all_three, "free", n, clients)
    return {
        "requests": n,
        "clients": clients,
        "hard_share": round(sum(s for f, _, s in MIX if f in FREE_QUALITY) / 20, 2),
        "free_quality": FREE_QUALITY,
        "all_paid": paid,
        "auto": auto,
        "free": free,
        "auto_success_vs_all_paid": round(auto["success"] / max(1e-9, paid["success"]), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=500)
    print(json.dumps(run(parser.parse_args().requests), indent=2))


if __name__ == "__main__":
    main()
