"""A running batch's measured rate and ETA, and the answer time that sizes its first window."""

from __future__ import annotations

import pytest

from relay_core.batch.eta import eta_s, measured_rate
from relay_core.batch.run.worker import FIRST_ANSWER_MAX_S, answer_time_s
from relay_core.batch.store.record import BatchRecord


def record(status: str = "in_progress", done: int = 0, **fields: str) -> BatchRecord:
    base = {
        "id": "batch_x",
        "status": status,
        "total": "1000",
        "completed": str(done),
        "failed": "0",
        "in_progress_at": "1000",
    }
    return BatchRecord.decode({**base, **fields})


def test_the_rate_is_lines_done_since_in_progress_and_the_eta_what_is_left_at_it() -> None:
    assert measured_rate(record(done=0), 1010.0) is None
    assert eta_s(record(done=0), 1010.0) is None
    assert measured_rate(record(done=200), 1010.0) == pytest.approx(20.0)
    assert eta_s(record(done=200), 1010.0) == pytest.approx(40.0)
    assert eta_s(record("completed", done=1000), 1060.0) is None
    assert measured_rate(record("validating", in_progress_at=""), 1010.0) is None


def test_before_its_first_answer_a_batch_counts_its_lines_as_out_since_it_began() -> None:
    assert answer_time_s(record(), 1003.0) == 3.0
    assert answer_time_s(record(), 1000.0 + 10 * FIRST_ANSWER_MAX_S) == FIRST_ANSWER_MAX_S
    assert answer_time_s(record(upstream_s="1.5"), 1003.0) == 1.5  # measured: that
    assert answer_time_s(record(in_progress_at=""), 1003.0) == 0.0
