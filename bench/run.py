"""``make bench``: run the farm benchmarks and keep their JSON under ``bench/results/``.

Each script can also be run on its own (see ``docs/benchmarks.md`` for what each measures and
the figures it gave). This runner does not rewrite ``docs/benchmarks.md``: compare by hand.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import farm_latency, farm_limits, worker_drain

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    RESULTS.mkdir(exist_ok=True)
    runs: dict[str, Callable[[], dict[str, Any]]] = {
        "worker_drain": worker_drain.run,
        "farm_latency": farm_latency.run,
        "farm_limits": farm_limits.run,
    }
    for name, run in runs.items():
        started = time.time()
        result = run()
        path = RESULTS / f"{name}.json"
        path.write_text(json.dumps({"at": started, **result}, indent=2))
        print(f"{name}: {path}")
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
