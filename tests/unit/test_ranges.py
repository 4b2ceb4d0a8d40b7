"""Reading a download's Range header (relay_api/ranges.py): the API tests cover the answers
(tests/integration/storage/test_downloads.py); these the edges no download reaches quickly."""

from __future__ import annotations

import pytest

from relay_api.ranges import MAX_RANGES, byte_ranges
from relay_core.errors import InvalidRequest, RangeNotSatisfiable


def test_the_forms_and_merging() -> None:
    assert byte_ranges("bytes=0-9, 5-19, -5", 100) == [(0, 20), (95, 100)]
    assert byte_ranges("Bytes = 3-3", 10) == [(3, 4)]
    assert byte_ranges("bytes=-500", 100) == [(0, 100)]  # a suffix longer than the file
    assert byte_ranges("bytes=0-4, 5-9", 100) == [(0, 10)]  # touching: one range
    assert byte_ranges("bytes=, 2-3, x-, -", 10) == [(2, 4)]  # parts that say nothing: skipped


def test_too_many_ranges_is_the_whole_file() -> None:
    many = ",".join(f"{i}-{i}" for i in range(0, 2 * (MAX_RANGES + 1), 2))
    assert byte_ranges(f"bytes={many}", 1000) == []


def test_unsatisfiable_names_the_size() -> None:
    with pytest.raises(RangeNotSatisfiable) as caught:
        byte_ranges("bytes=0-9", 0)  # an empty file has no byte to send
    assert caught.value.size == 0 and caught.value.status_code == 416
    with pytest.raises(RangeNotSatisfiable):
        byte_ranges("bytes=0-9, 100-", 100)  # one range outside is enough


@pytest.mark.parametrize("header", ["bytes", "items=0-1", "bytes=", "bytes=9-2", "bytes=a-b"])
def test_malformed(header: str) -> None:
    with pytest.raises(InvalidRequest):
        byte_ranges(header, 100)
