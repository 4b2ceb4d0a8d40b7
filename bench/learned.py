"""Learned routing when a provider gets worse at one task family mid-run.

    .venv/bin/python -m bench.learned [--requests 400]     # or: make bench BENCH_ONLY=learned

Two simulated providers serve the same model; ``drifting`` ranks first (twice the weight).
Both answer 90 % of ``coding`` requests well (the other 10 % empty: an unusable answer, which
Relay counts against the provider and fails over). After a warm-up, ``drifting``'s quality
profile changes through the simulator's admin API to 60 % good on ``coding`` (40 % empty);
``chat`` stays good on both. Then ``requests`` coding requests (and as many chat ones,
interleaved), ``clients`` at once, with the farm's default exploration (5 %).

The provider a request was routed to first is the one its ``x-relay-route`` header names
(the chosen target, before any failover). Reported per family: the share of first choices
that were ``drifting`` in each window of ``WINDOW`` requests after the change, and the
number of requests after the change until that share is under 10 % in every later window;
and the share of clients that got a usable answer. Prints a JSON-able dict.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

import httpx

from bench.harness import farm, provider

GOOD = {"coding": {"empty": 0.1}}
WORSE = {"coding": {"empty": 0.4}}
WARM = 100  # coding requests (and as many chat) before the change
WINDOW = 50
TARGET_SHARE = 0.10
PROMPTS = {
    "coding": "Write a Python function that reverses a linked list, case {i}.",
    "chat": "Tell me a joke about cats, {i}.",
}


def providers(sim_url: str) -> list[dict[str, Any]]:
    return [
        provider("drifting", "openai", sim_url, weight=2.0),
        provider("steady", "openai", sim_url),
    ]


def first_choice(route: str) -> str:
    """The chosen target's provider in an ``x-relay-route`` note
    (``family/contract; provider/model: score ...; N candidates``)."""
    for part in route.split("; ")[1:]:
        if ": " in part and "/" in part.split(": ")[0]:
            return part.split("/")[0]
    return ""


async def series(url: str, n: int, clients: int, tag: str) -> dict[str, list[tuple[str, bool]]]:
    """``n`` requests of each family, interleaved: per family, (first choice, usable answer)
    in the order they were sent."""
    gate = asyncio.Semaphore(clients)
    out: dict[str, list[tuple[str, bool]]] = {f: [("", False)] * n for f in PROMPTS}
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:

        async def one(family: str, i: int) -> None:
            text = PROMPTS[family].format(i=f"{tag}-{i}")
            body = {"model": "chat", "messages": [{"role": "user", "content": text}]}
            async with gate:
                r = await http.post("/v1/chat/completions", json=body)
            r.raise_for_status()
            content = r.json()["choices"][0]["message"]["content"] or ""
            out[family][i] = (first_choice(r.headers.get("x-relay-route", "")), bool(content))

        await asyncio.gather(*(one(f, i) for i in range(n) for f in PROMPTS))
    return out


def shares(chosen: list[str], name: str) -> list[float]:
    """The share of ``name`` among first choices, per window of WINDOW requests."""
    return [
        round(sum(c == name for c in chosen[k : k + WINDOW]) / len(chosen[k : k + WINDOW]), 3)
        for k in range(0, len(chosen), WINDOW)
    ]


def below_after(chosen: list[str], name: str) -> int | None:
    """Requests until ``name``'s share of first choices is under TARGET_SHARE in every
    sliding window of WINDOW requests from there on (the window's end)."""
    flags = [c == name for c in chosen]
    for start in range(0, len(flags) - WINDOW + 1):
        if all(
            sum(flags[k : k + WINDOW]) < TARGET_SHARE * WINDOW
            for k in range(start, len(flags) - WINDOW + 1)
        ):
            return start + WINDOW
    return None


def family_report(seen: list[tuple[str, bool]]) -> dict[str, Any]:
    chosen = [c for c, _ in seen]
    return {
        "drifting_share_per_50": shares(chosen, "drifting"),
        "requests_until_drifting_under_10pct": below_after(chosen, "drifting"),
        "usable_answers": round(sum(ok for _, ok in seen) / len(seen), 4),
    }


def run(n: int = 400, clients: int = 4) -> dict[str, Any]:
    with farm(providers, concurrency=64) as f:
        for name in ("drifting", "steady"):
            f.sim(name, quality=GOOD)
        warm = asyncio.run(series(f.api_url, WARM, clients, "warm"))
        f.sim("drifting", quality=WORSE)
        after = asyncio.run(series(f.api_url, n, clients, "after"))
        stats = f.sim_stats()["providers"]
    warm_coding = [c for c, _ in warm["coding"]]
    return {
        "requests_after_change": n,
        "clients": clients,
        "before": {"coding_drifting_share": shares(warm_coding, "drifting")},
        "coding": family_report(after["coding"]),
        "chat": family_report(after["chat"]),
        "empty_answers": {name: stats[name]["empty_answers"] for name in stats},
        "upstream_calls": {name: stats[name]["requests"] for name in stats},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    print(json.dumps(run(parser.parse_args().requests), indent=2))


if __name__ == "__main__":
    main()
