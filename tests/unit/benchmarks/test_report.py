"""bench.report: the generated table and the marker replacement, from fixture JSON (no timing)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench import report, rows
from bench.farm_latency import added_by_third

FIXTURES = Path(__file__).parents[2] / "fixtures" / "bench"

DOC = """# Benchmarks

Hand-written introduction.

<!-- bench:begin -->
stale generated text
<!-- bench:end -->

## Analysis

Hand-written analysis.
"""


def table_rows(text: str) -> list[list[str]]:
    """The generated table's body, cell by cell."""
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[1:]]


@pytest.fixture
def written(tmp_path: Path) -> str:
    results = tmp_path / "results"
    shutil.copytree(FIXTURES, results)
    source = tmp_path / "source.md"
    source.write_text(DOC)
    out = report.Target(tmp_path / "out" / "benchmarks.md", tmp_path / "out" / "img")
    return report.write(results, out, source=source, draw=False).read_text()


def test_the_table_sets_each_figure_beside_its_target(written: str) -> None:
    rows = {r[0]: r[1:] for r in table_rows(written)}
    assert rows["(a) added latency p50, sequential, over a 50 ms upstream"] == [
        "<= 6 ms",
        "5.50 ms (farm 57.5, direct 52)",
        "yes",
        "`make bench BENCH_ONLY=farm_latency`",
        "0.5 (2026-11-22)",
    ]
    assert rows["(a) added latency p99, sequential"][1:3] == ["18.2 ms", "**no**"]
    assert rows["(a) throughput at 50 concurrent (1 worker process(es))"][1:3] == [
        "210.4 req/s (direct 451)",
        "yes",
    ]
    batch = "(b) batch of 10,000 lines, 4 x 600 RPM"
    assert rows[f"{batch}: share of the pooled ceiling"][:3] == [
        ">= 95 %",
        "92.5 % (37 of 40 lines/s; 270.3 s, ideal 250 s)",
        "**no**",
    ]
    assert rows[f"{batch}: lost / duplicated / wrong lines"][2] == "yes"
    assert rows[f"{batch}: upstream 429s"][1:3] == ["120 of 10,120 (1.2 %)", "**no**"]


def test_rows_follow_the_issue_order_and_name_what_was_not_run(written: str) -> None:
    figures = [r[0] for r in table_rows(written)]
    assert figures[0].startswith("(a)")
    assert figures[-1].startswith("(b)")
    assert "Not run yet: `batch_one_down`," in written
    assert "(full mode, 2026-11-22 12:00 to 2026-11-22 12:05 UTC, 2 cores" in written


def test_only_the_part_between_the_markers_is_replaced(written: str) -> None:
    before, _, rest = written.partition(report.BEGIN)
    generated, _, after = rest.partition(report.END)
    assert before == DOC.partition(report.BEGIN)[0]
    assert after == DOC.partition(report.END)[2]
    assert "stale generated text" not in written
    assert "| figure | target | measured | met? | reproduce with |" in generated


def test_a_doc_without_markers_is_refused() -> None:
    with pytest.raises(ValueError, match="bench:begin"):
        report.replace_generated("# Benchmarks\n", "table")


def test_no_results_leaves_a_note(tmp_path: Path) -> None:
    source = tmp_path / "source.md"
    source.write_text(DOC)
    out = report.Target(tmp_path / "benchmarks.md", tmp_path / "img")
    text = report.write(tmp_path / "none", out, source=source).read_text()
    assert "*No results yet: run `make bench`.*" in text
    assert not out.img.exists()


def test_plots_are_drawn_for_the_results_present(tmp_path: Path) -> None:
    source = tmp_path / "source.md"
    source.write_text(DOC)
    out = report.Target(tmp_path / "benchmarks.md", tmp_path / "img")
    text = report.write(FIXTURES, out, source=source).read_text()
    assert sorted(p.name for p in out.img.iterdir()) == ["batch_throughput.png", "latency.png"]
    assert "![Batch throughput over time (b, c)](img/batch_throughput.png)" in text


def test_an_interleaved_result_shows_its_added_p50_by_third() -> None:
    result = json.loads((FIXTURES / "farm_latency.json").read_text())["result"]
    result["sequential"]["added_p50_by_third_ms"] = [5.1, 5.5, 6.25]
    first = rows.farm_latency(result)[0]
    assert first.measured == "5.50 ms (farm 57.5, direct 52); by third 5.10 / 5.50 / 6.25"


def test_added_by_third_compares_each_third_of_the_run_with_its_own_direct_third() -> None:
    direct = [0.050] * 6 + [0.060] * 3  # the box got slower in the last third
    through = [0.055] * 3 + [0.056] * 3 + [0.067] * 3
    assert added_by_third(direct, through) == [5.0, 6.0, 7.0]
