"""A worker whose Redis stops answering still shuts down: each step of ``Runtime.close`` is
bounded, so a frozen Redis (SIGSTOP: connections stay open, nothing answers) costs warnings,
not a process that never exits."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import pytest

from relay_workers import runtime
from relay_workers.runtime import Runtime
from tests.faults.conftest import paced_providers, redis_server
from tests.support.farm import make_settings, simulated


def test_a_worker_closes_when_redis_stops_answering(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "CLOSE_STEP_S", 0.5)
    monkeypatch.setattr(runtime, "CLOSE_TOTAL_S", 5.0)
    (tmp_path / "redis").mkdir()
    with (
        redis_server(tmp_path / "redis") as server,
        simulated(tmp_path, paced_providers) as (_sim_url, catalogue),
    ):
        worker = Runtime(make_settings(catalogue, redis_url=server.url))
        assert server.proc is not None
        server.proc.send_signal(signal.SIGSTOP)
        try:
            closer = threading.Thread(target=worker.close, daemon=True)
            closer.start()
            # The bound close() promises: CLOSE_TOTAL_S, then 5 s for the loop thread to end.
            closer.join(timeout=runtime.CLOSE_TOTAL_S + 5 + 10)
            assert not closer.is_alive(), "close() hung on a Redis that stopped answering"
        finally:
            server.proc.send_signal(signal.SIGCONT)
