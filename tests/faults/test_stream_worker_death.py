"""A worker dies (SIGKILL) while it holds streamed chat requests.

Before their first token: each is published again (under a new stream key) within seconds and
its client gets the whole answer, once, from the other worker, long before its deadline. After
the first token reached the client: its stream ends with an error event and ``[DONE]`` at once,
and no other worker's tokens follow."""

from __future__ import annotations

import re
import signal
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest

from tests.faults.conftest import FaultFactory, wait_until
from tests.faults.test_worker_death import held_by, held_by_any

pytestmark = pytest.mark.integration

DEADLINE_S = 90.0  # RELAY_REQUEST_TIMEOUT_S: a stream left to its deadline would fail ...
CLIENT_TIMEOUT_S = 30.0  # ... the client first
SLOW_MS = 3000  # the first token takes this long: the doomed worker holds the calls when it dies
STREAMS = 8
ANSWER = r"sim:[\w-]+/[\w-]+: "  # the simulator's answer: its provider and model, then the question


@dataclass
class Streamed:
    """What one client read of its stream."""

    request_id: str = ""
    served_by: str = ""  # provider/model, from the headers
    status: int = 0
    content: str = ""
    ids: set[str] = field(default_factory=set)  # the chunks' ``id`` fields
    errors: list[dict[str, Any]] = field(default_factory=list)
    done: int = 0  # ``data: [DONE]`` events

    error_next: bool = False

    def feed(self, line: str) -> None:
        """Take one line of the SSE body."""
        if line == "event: error":
            self.error_next = True
        elif line == "data: [DONE]":
            self.done += 1
        elif line.startswith("data: "):
            data = orjson.loads(line[len("data: ") :])
            if self.error_next:
                self.errors.append(data["error"])
                self.error_next = False
                return
            self.ids.add(data["id"])
            for choice in data["choices"]:
                self.content += choice["delta"].get("content") or ""


def question(i: int) -> str:
    return f"question s{i} [sim:slow={SLOW_MS}]"


def stream(http: httpx.Client, text: str, first: Future[str] | None = None) -> Streamed:
    chat = {"model": "chat", "stream": True, "messages": [{"role": "user", "content": text}]}
    out = Streamed()
    with http.stream("POST", "/v1/chat/completions", json=chat) as r:
        out.status, out.request_id = r.status_code, r.headers.get("x-request-id", "")
        out.served_by = f"{r.headers.get('x-relay-provider')}/{r.headers.get('x-relay-model')}"
        for line in r.iter_lines():
            out.feed(line)
            if first is not None and out.content:  # tell the test a token reached us
                first.set_result(out.content)
                first = None
    return out


def test_streams_held_by_a_sigkilled_worker_before_their_first_token_are_sent_again(
    fault_farm: FaultFactory,
) -> None:
    farm = fault_farm(workers=2, request_timeout_s=DEADLINE_S)
    with (
        httpx.Client(base_url=farm.url, timeout=CLIENT_TIMEOUT_S) as http,
        ThreadPoolExecutor(STREAMS) as pool,
    ):
        pending = [pool.submit(stream, http, question(i)) for i in range(STREAMS)]
        wait_until(lambda: len(held_by_any(farm)) >= 1, "a worker holds streams")
        doomed = next(w for w in farm.workers if held_by(farm, w))  # (either may take them)
        survivor = next(w for w in farm.workers if w is not doomed)
        held = set(held_by(farm, doomed))
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)
        results = [fut.result() for fut in pending]
    for i, got in enumerate(results):
        assert got.status == 200, (i, got)
        assert got.errors == [] and got.done == 1, (i, got)
        # One whole answer: two (or a piece of one before another) would not match.
        assert re.fullmatch(ANSWER + re.escape(question(i)), got.content), got.content
        assert got.ids == {got.request_id}, got.ids
    assert held <= {got.request_id for got in results}  # the dead worker's were answered
    assert survivor.poll() is None


def test_a_stream_whose_worker_dies_mid_answer_ends_with_an_error_event(
    fault_farm: FaultFactory,
) -> None:
    # Stream chunks of 4 characters a second apart: the answer takes ~10 s to stream.
    slow_stream = {"chunk_delay_ms": 1000, "chunk_chars": 4}
    farm = fault_farm(workers=2, request_timeout_s=DEADLINE_S, sim_overrides=slow_stream)
    with (
        httpx.Client(base_url=farm.url, timeout=CLIENT_TIMEOUT_S) as http,
        ThreadPoolExecutor(1) as pool,
    ):
        first: Future[str] = Future()
        pending = pool.submit(stream, http, "question m0", first)
        assert first.result(CLIENT_TIMEOUT_S).startswith("sim:")  # a token reached the client
        wait_until(lambda: len(held_by_any(farm)) == 1, "a worker holds the stream")
        holder = next(w for w in farm.workers if held_by(farm, w))
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        got = pending.result()
    assert got.status == 200
    assert [e["code"] for e in got.errors] == ["upstream_unavailable"], got.errors
    assert "stopped mid-answer" in got.errors[0]["message"]
    assert got.done == 1
    # What came is the start of one answer, cut short, and nothing from another worker.
    answer = f"sim:{got.served_by}: question m0"
    assert answer.startswith(got.content) and got.content != answer, got.content
    assert got.ids == {got.request_id}
    assert next(w for w in farm.workers if w is not holder).poll() is None
