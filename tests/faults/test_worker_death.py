"""A worker dies (SIGKILL) or stalls (SIGSTOP) while it holds chat requests: each is published
again within seconds, gets exactly one 200 long before its deadline, and a stalled worker's
late answers are dropped (one reply per request on the API's channel)."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from subprocess import Popen

import httpx
import pytest
import redis

from relay_core.dispatch.envelope import Reply
from relay_core.dispatch.holds import read_holds
from tests.faults.conftest import FaultFactory, FaultFarm, wait_until

pytestmark = pytest.mark.integration

DEADLINE_S = 90.0  # RELAY_REQUEST_TIMEOUT_S: a request left to its deadline would fail ...
CLIENT_TIMEOUT_S = 30.0  # ... the client first
SLOW_MS = 3000  # each call takes this long: the doomed worker is holding them when it dies
REQUESTS = 24


class Replies:
    """Every reply published on the farm's API reply channels, counted by request id."""

    def __init__(self, url: str, prefix: str) -> None:
        self.pubsub = redis.Redis.from_url(url).pubsub(ignore_subscribe_messages=True)
        self.pubsub.psubscribe(f"{prefix}:reply:*")
        self.seen: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self.pubsub.get_message(timeout=0.2)
            if message is not None and message["type"] == "pmessage":
                self.seen[Reply.model_validate_json(message["data"]).id] += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.pubsub.close()


@contextmanager
def replies(farm: FaultFarm) -> Iterator[Replies]:
    seen = Replies(farm.settings.redis_url, farm.settings.key_prefix)
    try:
        yield seen
    finally:
        seen.close()


def ask(http: httpx.Client, i: int) -> httpx.Response:
    text = f"question d{i} [sim:slow={SLOW_MS}]"
    chat = {"model": "chat", "messages": [{"role": "user", "content": text}]}
    return http.post("/v1/chat/completions", json=chat)


def held_by(farm: FaultFarm, worker: Popen[bytes]) -> list[str]:
    """The ids the worker process's last hold record lists."""
    name = f"{socket.gethostname()}.{worker.pid}"

    async def read() -> list[str]:
        client = redis.asyncio.Redis.from_url(farm.settings.redis_url)
        try:
            record = (await read_holds(client, farm.settings.key_prefix)).get(name)
        finally:
            await client.aclose()
        return [] if record is None else record.ids

    return asyncio.run(read())


def held_by_any(farm: FaultFarm) -> set[str]:
    async def read() -> set[str]:
        client = redis.asyncio.Redis.from_url(farm.settings.redis_url)
        try:
            holds = await read_holds(client, farm.settings.key_prefix)
        finally:
            await client.aclose()
        return {i for record in holds.values() for i in record.ids}

    return asyncio.run(read())


def send_all(http: httpx.Client, pool: ThreadPoolExecutor) -> list[Future[httpx.Response]]:
    return [pool.submit(ask, http, i) for i in range(REQUESTS)]


def answered_once(pending: list[Future[httpx.Response]], seen: Replies) -> None:
    """Every request got one 200 with its own answer, and one reply was published for it."""
    ids = []
    for i, fut in enumerate(pending):
        r = fut.result()
        assert r.status_code == 200, (i, r.text)
        content = r.json()["choices"][0]["message"]["content"]
        assert content.endswith(f": question d{i} [sim:slow={SLOW_MS}]"), content
        ids.append(r.headers["x-request-id"])
    assert len(set(ids)) == REQUESTS
    wait_until(lambda: all(seen.seen[i] for i in ids), "every reply seen on the channel")
    assert {i: seen.seen[i] for i in ids} == dict.fromkeys(ids, 1), "a request answered twice"


def test_requests_held_by_a_sigkilled_worker_are_answered_soon_and_once(
    fault_farm: FaultFactory,
) -> None:
    farm = fault_farm(workers=2, request_timeout_s=DEADLINE_S)
    doomed, survivor = farm.workers
    with (
        replies(farm) as seen,
        httpx.Client(base_url=farm.url, timeout=CLIENT_TIMEOUT_S) as http,
        ThreadPoolExecutor(REQUESTS) as pool,
    ):
        pending = send_all(http, pool)
        wait_until(lambda: len(held_by(farm, doomed)) >= 2, "the doomed worker holds requests")
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)
        answered_once(pending, seen)
    assert survivor.poll() is None


def test_a_stalled_worker_answers_too_late_and_its_answers_are_dropped(
    fault_farm: FaultFactory,
) -> None:
    farm = fault_farm(workers=2, request_timeout_s=DEADLINE_S)
    stalled, _survivor = farm.workers
    with (
        replies(farm) as seen,
        httpx.Client(base_url=farm.url, timeout=CLIENT_TIMEOUT_S) as http,
        ThreadPoolExecutor(REQUESTS) as pool,
    ):
        pending = send_all(http, pool)
        wait_until(lambda: len(held_by(farm, stalled)) >= 2, "the worker holds requests")
        held = set(held_by(farm, stalled))
        stalled.send_signal(signal.SIGSTOP)
        try:
            for fut in pending:
                fut.result()  # all answered by the survivor, the stalled worker's too
        finally:
            stalled.send_signal(signal.SIGCONT)
        # Woken, it finishes the calls it held and answers them (or hands them on to be
        # answered elsewhere): too late, dropped.
        wait_until(lambda: not held & held_by_any(farm), "the stalled calls end", 60)
        wait_until(lambda: farm.sim_totals()["in_flight"] == 0, "no call in flight")
        answered_once(pending, seen)
    assert stalled.poll() is None
