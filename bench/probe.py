"""Where a batch's lines are, per provider, over time: a thread that samples the simulator
(calls in flight, calls accepted) and the batch's books in Redis (lines each provider holds:
waiting for a token or in a call) every ``every_s`` seconds. A provider whose accepted rate
falls under its limit while it holds no more lines than its calls in flight was starved by
the feeder; one that held lines waiting lost its slots in the workers.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import httpx
import redis

from bench.harness import REDIS_URL, Farm


class Probe:
    def __init__(self, f: Farm, every_s: float = 0.5) -> None:
        self.farm = f
        self.every_s = every_s
        self.batch_id: str | None = None
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._started = 0.0

    def start(self, batch_id: str) -> None:
        self.batch_id = batch_id
        self._started = time.perf_counter()
        self._thread.start()

    def stop(self) -> list[dict[str, Any]]:
        self._stop.set()
        self._thread.join()
        return self.samples

    def _loop(self) -> None:
        r = redis.Redis.from_url(REDIS_URL, decode_responses=True)
        flying_key = f"{self.farm.prefix}:batch:{self.batch_id}:flying"
        with httpx.Client(timeout=5) as http:
            while not self._stop.wait(self.every_s):
                stats = http.get(f"{self.farm.sim_url}/_sim/stats").json()["providers"]
                flying = r.hgetall(flying_key)
                self.samples.append(
                    {
                        "t": round(time.perf_counter() - self._started, 2),
                        "providers": {
                            name: {
                                "accepted": p["accepted"],
                                "in_flight": p["in_flight"],
                                "held": int(flying.get(name, 0)),
                            }
                            for name, p in stats.items()
                        },
                    }
                )


def summary(samples: list[dict[str, Any]], limit_rps: dict[str, float]) -> dict[str, Any]:
    """Per provider over the middle 80 % of the run: its accepted rate as a share of its
    ceiling, the mean lines it held and calls it had in flight, and the share of 2 s spans
    it ran under 80 % of its ceiling while holding lines that waited (lost in the workers)
    or none (starved by the feeder)."""
    out: dict[str, Any] = {}
    if len(samples) < 10:
        return out
    cut = len(samples) // 10
    middle = samples[cut : len(samples) - cut]
    spans = middle[:: max(1, round(2.0 / 0.5))]
    for name, rps in limit_rps.items():
        first, last = middle[0]["providers"].get(name), middle[-1]["providers"].get(name)
        if not first or not last or not rps:
            continue
        seconds = middle[-1]["t"] - middle[0]["t"]
        rate = (last["accepted"] - first["accepted"]) / seconds
        waiting = starved = 0
        for a, b in itertools.pairwise(spans):
            pa, pb = a["providers"][name], b["providers"][name]
            if (pb["accepted"] - pa["accepted"]) / (b["t"] - a["t"]) >= 0.8 * rps:
                continue
            if pa["held"] > pa["in_flight"]:
                waiting += 1
            else:
                starved += 1
        held = [s["providers"][name]["held"] for s in middle]
        flying = [s["providers"][name]["in_flight"] for s in middle]
        out[name] = {
            "share": round(rate / rps, 3),
            "mean_held": round(sum(held) / len(held), 1),
            "mean_in_flight": round(sum(flying) / len(flying), 1),
            "short_spans_waiting": waiting,
            "short_spans_starved": starved,
            "spans": len(spans) - 1,
        }
    return out
