"""A batch of workflow runs (issue 17, "Workflow"): generate → validate → repair → classify →
answer over a 1,000-line batch, on real processes (simulator, API, two workers).

    .venv/bin/python -m bench.workflows [--lines 1000] [--workers 2]

Two scenarios on fresh farms, four providers of 600 RPM: ``invalid_json``, one provider
answering 30 % of its JSON in prose (failed over by the chat path: RELAY_REPAIR_MAX_ATTEMPTS
0, so the workflow's own repair step is the only re-ask); ``one_down``, one provider answering
every call with a 500. Measured: lines completed, whether every line's record holds its steps
once each in order (and no custom_id twice), upstream calls per line against the simulator's
count, calls failed over, upstream 429s, the wall time and lines/s.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from typing import Any

import httpx

from bench.harness import farm, provider
from tests.support.workflows import SUPPORT_PATH, support_workflow

FAMILIES = [
    ("openai", "openai"),
    ("gemini", "gemini"),
    ("claude", "anthropic"),
    ("ollama", "ollama"),
]
ENDPOINT = "/v1/workflows/support"


def _providers(url: str) -> list[dict[str, Any]]:
    out = []
    for name, api in FAMILIES:
        p = provider(f"w-{name}", api, url, rpm=600)
        p["models"] = [{"id": f"w-{name}-m", "aliases": ["chat"]}]
        out.append(p)
    return out


def _topic(i: int) -> str:
    return "billing" if i % 2 else "technical"


def _file(lines: int) -> bytes:
    rows = [
        {
            "custom_id": f"q{i}",
            "method": "POST",
            "url": ENDPOINT,
            "body": {"input": {"question": f"question {i} about {_topic(i)}"}},
        }
        for i in range(lines)
    ]
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def _records(http: httpx.Client, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    text = http.get(f"/v1/files/{file_id}/content").text
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def scenario(name: str, lines: int, workers: int) -> dict[str, Any]:
    env = {"RELAY_REPAIR_MAX_ATTEMPTS": "0", "RELAY_BATCH_TICK_S": "0.05"}
    extra = {"workflows": [support_workflow()]}
    with farm(_providers, workers=workers, window_s=1, extra_env=env, catalogue_extra=extra) as f:
        if name == "invalid_json":
            f.sim("w-openai", invalid_json_rate=0.3)
        else:
            f.sim("w-claude", error_rate=1.0)
        with httpx.Client(base_url=f.api_url, timeout=60) as http:
            r = http.post(
                "/v1/files", files={"file": ("b.jsonl", _file(lines))}, data={"purpose": "batch"}
            )
            started = time.monotonic()
            batch = http.post(
                "/v1/batches",
                json={
                    "input_file_id": r.json()["id"],
                    "endpoint": ENDPOINT,
                    "completion_window": "24h",
                },
            ).json()
            while batch["status"] not in ("completed", "failed", "expired", "cancelled"):
                time.sleep(0.5)
                batch = http.get(f"/v1/batches/{batch['id']}").json()
            wall = time.monotonic() - started
            records = _records(http, batch.get("output_file_id")) + _records(
                http, batch.get("error_file_id")
            )
        stats = f.sim_stats()["providers"]
    ids = Counter(r["custom_id"] for r in records)
    right, calls, failovers = 0, 0, 0
    for rec in records:
        run = rec["response"]["body"]
        i = int(rec["custom_id"][1:])
        steps = [s["step"] for s in run.get("steps", [])]
        right += run.get("status") == "completed" and steps == SUPPORT_PATH[_topic(i)]
        visits = [s for s in run.get("steps", []) if s["provider"]]
        calls += sum(s["attempts"] for s in visits)
        failovers += sum(
            1 for s in visits if s["failures"] or any(c.endswith(":failover") for c in s["checks"])
        )
    upstream = sum(p["requests"] for p in stats.values())
    return {
        "scenario": name,
        "lines": lines,
        "status": batch["status"],
        "completed": batch["request_counts"]["completed"],
        "records": len(records),
        "duplicated": sum(n - 1 for n in ids.values() if n > 1),
        "steps_right": right,
        "calls_per_line": round(calls / max(1, lines), 3),
        "upstream_calls": upstream,
        "calls_recorded": calls,
        "calls_failed_over": failovers,
        "upstream_429": sum(p.get("rate_limited", 0) for p in stats.values()),
        "wall_s": round(wall, 1),
        "lines_per_s": round(lines / wall, 2),
    }


def run(lines: int = 1000, workers: int = 2) -> dict[str, Any]:
    return {"scenarios": [scenario(s, lines, workers) for s in ("invalid_json", "one_down")]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print(json.dumps(run(args.lines, args.workers), indent=2))


if __name__ == "__main__":
    main()
