"""The PNG plots of ``docs/benchmarks.md``, drawn from the benchmarks' JSON.

matplotlib's object API only (``Figure`` + the Agg canvas): no pyplot, so no global state and
no display backend is chosen or needed. Each ``draw_*`` returns the :class:`Figure` entry the
report shows (file, title, caption with the target), or None when its results are missing.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any, NamedTuple

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure as MplFigure

from bench.rows import BALLOON, FLAT, GROWTH

Results = dict[str, dict[str, Any]]


class Figure(NamedTuple):
    file: str
    title: str
    caption: str


def save(fig: MplFigure, path: Path) -> None:
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})


def rates(t: list[float], counts: list[float]) -> list[float]:
    """Per-interval rates of a cumulative series sampled at times ``t`` (one fewer)."""
    steps = zip(pairwise(t), pairwise(counts), strict=True)
    return [(c1 - c0) / (t1 - t0) if t1 > t0 else 0.0 for (t0, t1), (c0, c1) in steps]


def batch_panel(ax: Axes, title: str, r: dict[str, Any]) -> None:
    s = r["series"]
    t = s["t"]
    mids = [(a + b) / 2 for a, b in pairwise(t)]
    widths = [0.8 * (b - a) for a, b in pairwise(t)]
    ax.stairs(rates(t, s["completed"]), t, color="tab:blue", lw=1.5, label="lines completed / s")
    ax.step(t, s["ceiling_rps"], where="post", ls="--", color="black", label="ceiling")
    ceiling95 = [0.95 * c for c in s["ceiling_rps"]]
    ax.step(t, ceiling95, where="post", ls=":", color="grey", label="95 % of the ceiling")
    ax.bar(mids, rates(t, s["rate_limited"]), width=widths, color="tab:red", label="429s / s")
    failed = rates(t, s["errors"])
    if any(failed):
        ax.bar(mids, failed, width=widths, color="tab:orange", alpha=0.7, label="5xx / s")
    ax.set_title(
        f"{title}: {r['share_of_ceiling'] * 100:.1f} % of the ceiling, "
        f"429s {r['upstream_429_share'] * 100:.2f} %",
        fontsize=10,
    )
    ax.set_ylabel("per second")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))


def draw_batch(results: Results, img: Path) -> Figure | None:
    panels = [
        (name, title)
        for name, title in (
            ("batch_throughput", "all providers up"),
            ("batch_one_down", "one provider down"),
            ("batch_flapping", "one provider flapping"),
        )
        if name in results
    ]
    if not panels:
        return None
    fig = MplFigure(figsize=(10, 3.2 * len(panels)))
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, (name, title) in zip(axes, panels, strict=True):
        batch_panel(ax, title, results[name]["result"])
    axes[-1].set_xlabel("seconds since the batch was created")
    save(fig, img / "batch_throughput.png")
    return Figure(
        "batch_throughput.png",
        "Batch throughput over time (b, c)",
        "Lines completed per second (1 s samples of the batch's `request_counts`) against the "
        "pooled ceiling (dashed; it drops while a provider is down), with the upstream 429s and "
        "5xx the simulator counted. Target: >= 95 % of the ceiling (dotted), 429s <= 1 %.",
    )


def bars(ax: Axes, groups: list[str], series: dict[str, list[float]]) -> None:
    width = 0.8 / len(series)
    for k, (label, values) in enumerate(series.items()):
        xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(groups))]
        ax.bar(xs, values, width=width, label=label)
    ax.set_xticks(range(len(groups)), groups, fontsize=8)


def added_panel(ax: Axes, results: Results) -> None:
    """What the farm adds to one request, sequentially (the targets are for that)."""
    groups: list[str] = []
    p50: list[float] = []
    p99: list[float] = []
    targets: list[tuple[int, float, float | None]] = []  # (group, p50 target, p99 target)
    if "farm_latency" in results:
        seq = results["farm_latency"]["result"]["sequential"]
        groups.append("request")
        p50.append(seq["added_p50_ms"])
        p99.append(seq["added_p99_ms"])
        targets.append((0, 6.0, 15.0))
    if "ttft" in results:
        first = results["ttft"]["result"]["time_to_first_token"]
        groups.append("time to first token")
        p50.append(first["added_p50_ms"])
        p99.append(first["added_p99_ms"])
        targets.append((len(groups) - 1, 10.0, None))
    bars(ax, groups, {"added p50": p50, "added p99": p99})
    for i, t50, t99 in targets:
        ax.hlines(t50, i - 0.4, i, colors="black", ls="--")
        if t99 is not None:
            ax.hlines(t99, i, i + 0.4, colors="black", ls=":")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_title("added vs direct, sequential (- - target p50, ··· p99)", fontsize=9)
    ax.set_ylabel("ms")
    ax.legend(fontsize=7, loc="upper left")


def throughput_panel(ax: Axes, r: dict[str, Any]) -> None:
    conc = r["concurrent"]
    ax.bar(["direct", "through the farm"], [conc["direct_rps"], conc["farm_rps"]])
    ax.axhline(200, color="black", ls="--", label="target 200 req/s")
    ax.set_title(f"throughput at {conc['width']} concurrent", fontsize=9)
    ax.set_ylabel("requests / s")
    ax.legend(fontsize=7)


def interactive_panel(ax: Axes, r: dict[str, Any]) -> None:
    i = r["interactive"]
    qs = ("p50", "p90", "p99")
    bars(
        ax,
        list(qs),
        {
            "idle farm": [i[f"idle_{q}_ms"] for q in qs],
            "batch running": [i[f"busy_{q}_ms"] for q in qs],
        },
    )
    ax.hlines(BALLOON * i["idle_p99_ms"], 1.6, 2.4, colors="black", ls="--")
    ax.set_title(f"interactive, {r['lines']:,}-line batch (- - {BALLOON:g} x idle p99)", fontsize=9)
    ax.set_ylabel("ms")
    ax.legend(fontsize=7, loc="upper left")


def draw_latency(results: Results, img: Path) -> Figure | None:
    panels: list[Callable[[Axes], None]] = []
    if "farm_latency" in results or "ttft" in results:
        panels.append(lambda ax: added_panel(ax, results))
    if "farm_latency" in results:
        panels.append(lambda ax: throughput_panel(ax, results["farm_latency"]["result"]))
    if "batch_upload" in results:
        panels.append(lambda ax: interactive_panel(ax, results["batch_upload"]["result"]))
    if not panels:
        return None
    fig = MplFigure(figsize=(4 * len(panels), 3.6))
    for ax, panel in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels, strict=True):
        panel(ax)
    save(fig, img / "latency.png")
    return Figure(
        "latency.png",
        "Latency percentiles and throughput (a, e, f)",
        "Left: what the farm adds over calling the simulator directly, one request at a time; "
        "targets p50 <= 6 ms and p99 <= 15 ms, time to first token p50 <= 10 ms. Middle: "
        "requests per second at 50 concurrent; target >= 200. Right: interactive chat requests "
        "on the idle farm and while a large batch runs; target: not ballooning.",
    )


def draw_scaling(results: Results, img: Path) -> Figure | None:
    if "scaling" not in results:
        return None
    r = results["scaling"]["result"]
    fig = MplFigure(figsize=(10, 3.6))
    left, right = fig.subplots(1, 2)
    sizes = [f"{p['lines']:,}" for p in r["by_lines"]]
    cost = [p["worker_cpu_ms_per_line"] for p in r["by_lines"]]
    left.bar_label(left.bar(sizes, cost, color="tab:blue"), fmt="%.1f ms", fontsize=8)
    left.axhline(min(cost) * FLAT, color="black", ls="--", label=f"{FLAT:g} x the cheapest")
    left.set_title("worker CPU per line by batch size (target: flat)", fontsize=9)
    left.set_xlabel(f"lines ({r['by_lines'][0]['workers']} worker processes)")
    left.set_ylabel("ms CPU per line")
    left.legend(fontsize=7, loc="lower right")
    counts = [str(p["workers"]) for p in r["by_workers"]]
    speed = right.bar(counts, [p["achieved_rps"] for p in r["by_workers"]], color="tab:green")
    right.bar_label(
        speed, [f"{p['worker_cpu_ms_per_line']:.1f} ms/line" for p in r["by_workers"]], fontsize=8
    )
    right.axhline(r["ceiling_rps"], color="black", ls="--", label="ceiling")
    right.set_title(f"{r['by_workers'][0]['lines']:,}-line batch by worker processes", fontsize=9)
    right.set_xlabel("worker processes")
    right.set_ylabel("lines / s")
    right.legend(fontsize=7, loc="lower right")
    save(fig, img / "scaling.png")
    return Figure(
        "scaling.png",
        "Scaling (d)",
        f"Left: worker CPU per line for batches of {' / '.join(sizes)} lines; target: flat "
        f"(largest <= {FLAT:g} x smallest). Right: lines per second (and worker CPU per line) "
        f"with {' / '.join(counts)} worker processes, on the cores stated above; the ceiling "
        f"is {r['ceiling_rps']:g} lines/s.",
    )


def draw_load(results: Results, img: Path) -> Figure | None:
    if "load" not in results:
        return None
    r = results["load"]["result"]
    s = r["series"]
    fig = MplFigure(figsize=(10, 3.4))
    ax = fig.subplots()
    twin = ax.twinx()
    twin.fill_between(s["t"], s["in_flight"], color="tab:grey", alpha=0.25, label="in flight")
    twin.set_ylabel("requests in flight")
    ax.plot(s["t"], s["api_mb"], label="API RSS")
    ax.plot(s["t"], s["workers_mb"], label="worker RSS")
    ax.set_zorder(twin.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("seconds")
    ax.set_ylabel("MB")
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.08, 1))
    ax.set_title(f"{r['requests']:,} concurrent requests, {len(r['rounds'])} rounds", fontsize=9)
    save(fig, img / "load.png")
    return Figure(
        "load.png",
        f"{r['requests']:,} concurrent requests",
        "Resident memory of the API and the worker while the requests are held, round after "
        f"round. Target: no errors, and memory bounded (a later round peaks at most {GROWTH:g} x "
        "the first).",
    )


def draw_matrix(results: Results, img: Path) -> Figure | None:
    """Lines/s over time against the ceiling, one panel per matrix cell that kept its series."""
    cells = [c for c in results.get("batch_matrix", {}).get("result", {}).get("cells", [])]
    cells = [c for c in cells if c.get("series")]
    if not cells:
        return None
    fig = MplFigure(figsize=(10, 2.4 * len(cells)))
    axes = fig.subplots(len(cells), 1, squeeze=False)[:, 0]
    for ax, c in zip(axes, cells, strict=True):
        t = [0.0, *(float(x[0]) for x in c["series"])]
        done = [0.0, *(float(x[1]) for x in c["series"])]
        window = 8  # 2 s of 0.25 s samples: smooth the per-sample jitter
        t2, d2 = t[::window], done[::window]
        ax.stairs(rates(t2, d2), t2, color="tab:blue", lw=1.5, label="lines completed / s")
        ax.axhline(c["ceiling_rps"], ls="--", color="black", label="ceiling")
        ax.axhline(0.95 * c["ceiling_rps"], ls=":", color="grey", label="95 %")
        ax.set_title(
            f"{c['scenario']}, {c['lines']:,} lines: {c['share_of_ceiling'] * 100:.1f} % of "
            f"the ceiling, {c['upstream_429']} 429s (load {c.get('loadavg_1m', '?')})",
            fontsize=9,
        )
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    axes[-1].set_xlabel("seconds since the batch was created")
    save(fig, img / "batch_matrix.png")
    return Figure(
        "batch_matrix.png",
        "Batches at the ceiling (issue 13 matrix)",
        "Lines completed per second (2 s steps) against the simulator's binding ceiling "
        "(dashed) for each cell of `bench.batch_matrix`. Target: >= 95 % at 10,000 lines, "
        ">= 90 % at 1,000.",
    )


DRAWERS: tuple[Callable[[Results, Path], Figure | None], ...] = (
    draw_batch,
    draw_matrix,
    draw_latency,
    draw_scaling,
    draw_load,
)


def draw(results: Results, img: Path) -> list[Figure]:
    """Every plot whose results are present, written under ``img``."""
    return [fig for make in DRAWERS if (fig := make(results, img)) is not None]
