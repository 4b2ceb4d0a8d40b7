"""A finalize whose files storage refused is tried again after a delay that doubles, capped."""

from __future__ import annotations

from pathlib import Path

from relay_core.batch.run.finalize import retry_delay
from relay_core.settings import Settings


def test_the_delay_doubles_from_the_first_up_to_the_cap() -> None:
    settings = Settings(
        config=Path("none.yaml"), batch_finalize_retry_s=5, batch_finalize_retry_max_s=300
    )
    delays = [retry_delay(n, settings) for n in range(1, 10)]
    assert delays == [5, 10, 20, 40, 80, 160, 300, 300, 300]
    assert retry_delay(10_000, settings) == 300  # no overflow after days of failing
