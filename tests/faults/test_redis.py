"""Redis dies (SIGKILL) mid-batch and comes back with its AOF: the API and the workers
reconnect on their own, and the batch finishes with every line once."""

from __future__ import annotations

import pytest

from tests.faults.conftest import FaultFactory, answered_once, questions, submit, wait_until
from tests.integration.batch.conftest import wait_for

pytestmark = pytest.mark.integration


def test_a_redis_restart_mid_batch_loses_no_line(fault_farm: FaultFactory) -> None:
    farm = fault_farm(sim_overrides={"latency_ms": 100}, workers=2, private_redis=True)
    assert farm.redis_server is not None
    lines = questions(300)
    with farm.client() as http:
        batch_id = submit(http, lines)
        wait_for(http, batch_id, lambda b: b["request_counts"]["completed"] >= 60)
        wait_until(lambda: farm.sim_totals()["in_flight"] > 0, "calls in flight")
        farm.redis_server.kill()
        # The calls in the air come back to a Redis that is gone.
        wait_until(lambda: farm.sim_totals()["in_flight"] == 0, "calls in flight to end")
        farm.redis_server.start()
        final = wait_for(http, batch_id, timeout_s=60)
        answered_once(http, final, lines)
        # Interactive requests too: the API's reply subscription is back.
        chat = {"model": "chat", "messages": [{"role": "user", "content": "still there?"}]}
        reply = http.post("/v1/chat/completions", json=chat)
    assert reply.status_code == 200, reply.text
    assert [w.poll() for w in farm.workers] == [None, None]  # no worker died of it
    assert reply.json()["choices"][0]["message"]["content"].endswith(": still there?")
