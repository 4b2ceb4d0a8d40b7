"""Relay on four hosts of one machine (network namespaces, :mod:`bench.netns`): the API on
``api``, workers on ``worker-b`` and ``worker-c``, and Redis, the provider simulator and an
S3-protocol server (moto's) on ``data``. The workers reach the files only through S3 (or, with
``--storage local``, a folder every namespace sees: the same disk). Then ``worker-b``'s link is
cut mid-batch and restored.

    .venv/bin/python -m bench.multihost [--lines 10000] [--cut-lines 3000] [--cut-s 30]
        [--rpm 3000] [--storage s3|local|both]

Reported: the batch's rate against the pooled binding ceiling (the simulator's) and the
workers' CPU per line, per storage; for the cut: lines lost, duplicated and failed, upstream
429s, the API's answers while the link was down, and whether ``worker-b`` came back.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from subprocess import DEVNULL, Popen
from typing import Any

import httpx
import redis
import yaml

from bench.batch_throughput import batch_file
from bench.harness import cpu_seconds, create_batch, provider
from bench.netns import Host, Network, unavailable
from relay_cli.embedded_redis import server_binary
from relay_core.heartbeat import WorkerBeat
from relay_sim.pooled import pooled_ceiling

HOSTS = ["api", "worker-b", "worker-c", "data"]
FAMILIES = {"mh-openai": "openai", "mh-gemini": "gemini", "mh-claude": "anthropic"}
FAMILIES |= {"mh-ollama": "ollama"}
BUCKET = "relay-files"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "multihost",
    "AWS_SECRET_ACCESS_KEY": "multihost-secret",
    "AWS_REGION": "us-east-1",
}
SETTINGS = {  # short timings: a line lost with a cut-off host is re-sent within seconds
    "RELAY_BATCH_MIN_WINDOW_S": "1",
    "RELAY_BATCH_LINE_TIMEOUT_S": "3",
    "RELAY_SHUTDOWN_GRACE_S": "1",
}


@dataclass
class MultiFarm:
    net: Network
    folder: Path
    api_url: str
    sim_url: str
    redis_url: str
    prefix: str
    key: str
    workers: dict[str, Popen[bytes]]

    def client(self, timeout_s: float = 30) -> httpx.Client:
        auth = {"authorization": f"Bearer {self.key}"}
        return httpx.Client(base_url=self.api_url, headers=auth, timeout=timeout_s)

    def host(self, name: str) -> Host:
        return self.net.hosts[name]

    def beats(self) -> list[WorkerBeat]:
        client = redis.Redis.from_url(self.redis_url)
        keys = list(client.scan_iter(match=f"{self.prefix}:worker:*"))
        raws = [r for r in client.mget(keys) if r is not None] if keys else []
        return [WorkerBeat.model_validate_json(r) for r in raws]

    def sim_stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = httpx.get(f"{self.sim_url}/_sim/stats", timeout=10).json()
        return stats

    def sim_reset(self) -> None:
        httpx.post(f"{self.sim_url}/_sim/reset", timeout=10).raise_for_status()

    def worker_cpu(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.workers.values())


def wait_until(check: Any, what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s} s")
        time.sleep(0.05)  # polling a condition, bounded by the deadline


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code < 500
    except httpx.HTTPError:
        return False


def _redis_up(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def relay(*args: str) -> list[str]:
    return [sys.executable, "-m", "relay_cli.main", *args]


@contextmanager
def multihost_farm(folder: Path, rpm: int, storage: str = "s3") -> Iterator[MultiFarm]:
    """The four hosts, their processes started and answering; everything stops at the end."""
    with ExitStack() as stack:
        net = stack.enter_context(Network(HOSTS))
        data, api = net.hosts["data"], net.hosts["api"]
        log = stack.enter_context((folder / "farm.log").open("wb"))
        procs: list[Popen[bytes]] = []
        stack.callback(_stop, procs)
        redis_url = f"redis://{data.ip}:6379/0"
        sim_url, s3_url = f"http://{data.ip}:8900", f"http://{data.ip}:9000"
        catalogue = folder / "relay.yaml"
        entries = [provider(name, family, sim_url, rpm=rpm) for name, family in FAMILIES.items()]
        catalogue.write_text(yaml.safe_dump({"providers": entries}))
        env = _env(folder, catalogue, redis_url, s3_url, storage)
        redis_argv = [server_binary()[0], "--bind", data.ip, "--port", "6379", "--save", ""]
        procs.append(data.popen([*redis_argv, "--protected-mode", "no"], env, log))
        wait_until(lambda: _redis_up(redis_url), "redis on the data host")
        # The workers need only Redis to start: they start while the data host's servers do.
        workers = {}
        for name in ("worker-b", "worker-c"):
            host_env = {**env, "RELAY_DATA_DIR": str(folder / name)}
            argv = relay("worker", "--concurrency", "16", "--loglevel", "WARNING")
            workers[name] = net.hosts[name].popen(argv, host_env, log)
            procs.append(workers[name])
        sim_argv = relay("sim", "--host", data.ip, "--port", "8900", "--config", str(catalogue))
        procs.append(data.popen([*sim_argv, "--window-s", "1"], env, log))
        moto = [sys.executable, "-m", "moto.server", "-H", data.ip, "-p", "9000"]
        procs.append(data.popen(moto, env, DEVNULL))
        wait_until(lambda: _up(s3_url), "the S3 server")
        httpx.put(f"{s3_url}/{BUCKET}", timeout=10).raise_for_status()
        api_argv = relay("api", "--host", api.ip, "--port", "8000", "--loglevel", "WARNING")
        procs.append(api.popen(api_argv, {**env, "RELAY_DATA_DIR": str(folder / "api")}, log))
        farm = MultiFarm(
            net, folder, f"http://{api.ip}:8000", sim_url, redis_url, env["RELAY_KEY_PREFIX"],
            env["RELAY_API_KEYS"], workers,
        )  # fmt: skip
        wait_until(lambda: _up(f"{sim_url}/_sim/health"), "the simulator")
        wait_until(lambda: _up(f"{farm.api_url}/health"), "the API")
        wait_until(lambda: len(farm.beats()) == 2, "both workers' heartbeats")
        yield farm


def _env(
    folder: Path, catalogue: Path, redis_url: str, s3_url: str, storage: str
) -> dict[str, str]:
    """What every Relay process gets: Redis, the catalogue, the storage settings (and the
    API's gateway key, which a worker ignores). Nothing of the caller's RELAY_* leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "AWS_"))}
    env |= {
        **SETTINGS,
        "PYTHONUNBUFFERED": "1",
        "RELAY_CONFIG": str(catalogue),
        "RELAY_REDIS_URL": redis_url,
        "RELAY_KEY_PREFIX": f"mh{secrets.token_hex(4)}",
        "RELAY_API_KEYS": secrets.token_urlsafe(24),
        "RELAY_STORAGE_DIR": str(folder / "files"),  # the same disk: `local` only
    }
    if storage == "s3":
        env |= CREDENTIALS | {
            "RELAY_STORAGE_URL": f"s3://{BUCKET}/relay",
            "RELAY_S3_ENDPOINT_URL": s3_url,
        }
    return env


def _stop(procs: list[Popen[bytes]]) -> None:
    for p in reversed(procs):
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(20)
        except Exception:  # still running past the grace: no mercy
            p.kill()
            p.wait(5)


# ---- the batch ------------------------------------------------------------------------------


def start_batch(http: httpx.Client, lines: int) -> str:
    """Upload ``lines`` chat lines (custom ids ``q0``...) and start a batch of them."""
    up = http.post(
        "/v1/files", files={"file": ("m.jsonl", batch_file(lines))}, data={"purpose": "batch"}
    )
    up.raise_for_status()
    batch_id: str = create_batch(http, up.json()["id"])["id"]
    return batch_id


def batch_state(http: httpx.Client, batch_id: str) -> dict[str, Any]:
    state: dict[str, Any] = http.get(f"/v1/batches/{batch_id}").json()
    return state


def done(http: httpx.Client, batch_id: str, timeout_s: float) -> dict[str, Any]:
    final: dict[str, Any] = {}

    def ended() -> bool:
        final.update(batch_state(http, batch_id))
        return final["status"] in ("completed", "failed", "expired", "cancelled")

    wait_until(ended, "the batch's end", timeout_s)
    return final


def tally(http: httpx.Client, final: dict[str, Any], lines: int) -> dict[str, int]:
    """Lines lost (in neither file), duplicated (more than once) and failed."""
    seen: Counter[str] = Counter()
    failed = 0
    for key in ("output_file_id", "error_file_id"):
        if final.get(key):
            body = http.get(f"/v1/files/{final[key]}/content").text
            found = [json.loads(raw)["custom_id"] for raw in body.splitlines() if raw.strip()]
            seen.update(found)
            failed += len(found) if key == "error_file_id" else 0
    asked = {f"q{i}" for i in range(lines)}
    return {
        "lost": len(asked - set(seen)),
        "duplicated": sum(n - 1 for n in seen.values() if n > 1),
        "failed": failed,
    }


def upstream(farm: MultiFarm) -> dict[str, Any]:
    stats = farm.sim_stats()
    totals = stats["totals"]
    pool = pooled_ceiling(stats)
    share = pool.share()
    return {
        "upstream_requests": totals["requests"],
        "upstream_429s": totals["rate_limited"],
        "share_of_ceiling": None if share is None else round(share, 3),
        "ceiling_rps": round(pool.requests_per_s, 1),
    }


def throughput(farm: MultiFarm, lines: int) -> dict[str, Any]:
    """One batch on both worker hosts, no fault: its rate against the pooled ceiling."""
    farm.sim_reset()
    cpu0 = farm.worker_cpu()
    with farm.client() as http:
        t0 = time.perf_counter()
        batch_id = start_batch(http, lines)
        final = done(http, batch_id, timeout_s=600)
        wall = time.perf_counter() - t0
        counts = tally(http, final, lines)
    cpu = farm.worker_cpu() - cpu0
    return {
        "lines": lines,
        "status": final["status"],
        "seconds": round(wall, 1),
        "lines_per_s": round(lines / wall, 1),
        "worker_cpu_ms_per_line": round(1000 * cpu / lines, 3),
        **counts,
        **upstream(farm),
    }


def cut_mid_batch(farm: MultiFarm, lines: int, cut_s: float) -> dict[str, Any]:
    """Cut ``worker-b``'s link once a quarter of the batch is done, for ``cut_s`` seconds;
    meanwhile poll the batch and send chat requests through the API."""
    farm.sim_reset()
    victim = farm.host("worker-b")
    answered = asked = chats_ok = chats = 0
    statuses: list[int] = []  # each chat's status while cut (0: no answer within 20 s)
    with farm.client() as http:
        batch_id = start_batch(http, lines)
        wait_until(
            lambda: batch_state(http, batch_id)["request_counts"]["completed"] >= lines // 4,
            "a quarter of the batch",
        )
        farm.net.cut(victim)
        cut_at = time.monotonic()
        try:
            while time.monotonic() - cut_at < cut_s:
                asked += 1
                answered += http.get(f"/v1/batches/{batch_id}").status_code == 200
                chats += 1
                statuses.append(_chat(http))
                chats_ok += statuses[-1] == 200
        finally:
            farm.net.restore(victim)
        back_at = time.time()
        final = done(http, batch_id, timeout_s=600)
        counts = tally(http, final, lines)
    came_back = True
    try:  # its next beats, within their period, say it is back
        wait_until(lambda: _beat_since(farm, "worker-b", back_at), "worker-b's beat", 30)
    except TimeoutError:
        came_back = False
    return {
        "lines": lines,
        "cut_s": cut_s,
        "status": final["status"],
        **counts,
        "api_answers_while_cut": f"{answered}/{asked}",
        "chat_ok_while_cut": f"{chats_ok}/{chats}",
        "chat_statuses_while_cut": statuses,
        "worker_b_back": came_back,
        "files_in_local_folder": (farm.folder / "files").exists(),
        "hosts_in_status": sorted({b.host for b in farm.beats()}),
        **upstream(farm),
    }


def _chat(http: httpx.Client) -> int:
    body = {"model": "chat", "messages": [{"role": "user", "content": "are you there?"}]}
    try:
        return http.post("/v1/chat/completions", json=body, timeout=20).status_code
    except httpx.HTTPError:
        return 0


def _beat_since(farm: MultiFarm, host: str, since: float) -> bool:
    return any(b.host == host and b.at > since for b in farm.beats())


def run(
    lines: int = 10_000, cut_lines: int = 3000, cut_s: float = 30, rpm: int = 3000,
    storages: tuple[str, ...] = ("s3", "local"),
) -> dict[str, Any]:  # fmt: skip
    reason = unavailable()
    if reason is not None:
        return {"skipped": reason}
    report: dict[str, Any] = {"rpm_per_provider": rpm, "providers": len(FAMILIES)}
    for storage in storages:
        with ExitStack() as stack:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="relay-multihost-"))
            farm = stack.enter_context(multihost_farm(Path(tmp), rpm, storage))
            report[storage] = {"throughput": throughput(farm, lines)}
            if storage == "s3":
                report[storage]["cut"] = cut_mid_batch(farm, cut_lines, cut_s)
    return report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--cut-lines", type=int, default=3000)
    parser.add_argument("--cut-s", type=float, default=30)
    parser.add_argument("--rpm", type=int, default=3000)
    parser.add_argument("--storage", choices=["s3", "local", "both"], default="both")
    args = parser.parse_args()
    storages = ("s3", "local") if args.storage == "both" else (args.storage,)
    print(json.dumps(run(args.lines, args.cut_lines, args.cut_s, args.rpm, storages), indent=2))


if __name__ == "__main__":
    main()
