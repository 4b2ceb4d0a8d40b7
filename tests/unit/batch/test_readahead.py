"""The feeder's read-ahead of input lines (relay_core/batch/run/readahead.py), on a real folder
store whose reads are counted: lines in file order cost one read per block, fetched ahead."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from relay_core.batch.run.readahead import ReadAhead
from relay_core.storage.local import LocalStorage

LINES = [b'{"custom_id": "c%d", "n": %d}' % (i, i * i) for i in range(400)]
RANGES: list[tuple[int, int]] = []
_at = 0
for _line in LINES:
    RANGES.append((_at, len(_line)))
    _at += len(_line) + 1


class Counted(LocalStorage):
    """A folder store that notes every ranged read it is asked for."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.reads: list[list[tuple[int, int]]] = []

    async def read_ranges(self, name: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        self.reads.append(list(ranges))
        return await super().read_ranges(name, ranges)


@pytest.fixture
async def storage(tmp_path: Path) -> Counted:
    store = Counted(tmp_path)
    async with store.open_write("file-in") as out:
        await out.write(b"".join(line + b"\n" for line in LINES))
    return store


async def test_lines_in_order_cost_a_read_per_block_fetched_ahead(storage: Counted) -> None:
    ahead = ReadAhead(storage, block=2000)  # ~70 lines a block; the file is ~11 KB
    got: list[bytes] = []
    for start in range(0, len(LINES), 8):  # a tick's claim at a time
        got += await ahead.read("file-in", RANGES[start : start + 8])
    assert got == LINES
    size = RANGES[-1][0] + RANGES[-1][1] + 1
    starts = [r[0][0] for r in storage.reads]
    assert len(storage.reads) == -(-size // 2000)  # each block once, nothing else
    assert starts == sorted(starts) and all(len(r) == 1 for r in storage.reads)


async def test_the_next_block_is_fetched_before_a_tick_needs_it(storage: Counted) -> None:
    ahead = ReadAhead(storage, block=2000)
    await ahead.read("file-in", RANGES[:40])  # past half the first block
    first_end = max(o + n + 1 for o, n in RANGES if o + n + 1 <= 2000)  # its last whole line
    assert await ahead.read("file-in", RANGES[80:88]) == LINES[80:88]
    # The second block was asked for from where the first ended (ahead of need), not from
    # line 80 (on demand); and nothing else was read.
    assert storage.reads == [[(0, 2000)], [(first_end, 2000)]]


async def test_lines_sent_again_from_before_the_blocks_are_read_by_range(
    storage: Counted,
) -> None:
    ahead = ReadAhead(storage, block=2000)
    await ahead.read("file-in", RANGES[300:310])
    before = len(storage.reads)
    again = await ahead.read("file-in", [RANGES[3], RANGES[305], RANGES[7]])
    assert again == [LINES[3], LINES[305], LINES[7]]
    assert storage.reads[before:] == [[RANGES[3], RANGES[7]]]


async def test_a_missing_or_deleted_file(storage: Counted) -> None:
    ahead = ReadAhead(storage, block=2000)
    with pytest.raises(FileNotFoundError):
        await ahead.read("file-none", RANGES[:2])
    assert await ahead.read("file-in", RANGES[:2]) == LINES[:2]
    await storage.delete("file-in")
    with pytest.raises(FileNotFoundError):
        await ahead.read("file-in", RANGES[200:202])  # past the blocks held
    ahead.forget("file-in")
    with pytest.raises(FileNotFoundError):
        await ahead.read("file-in", RANGES[:2])
