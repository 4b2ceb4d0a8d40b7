"""The targets, and each benchmark's figures set beside them: rows of the generated table.

One function per benchmark takes the ``result`` that its ``run()`` returned and gives rows of
(figure, target, measured, met). ``met`` is None for a figure shown without a target. The
letters (a)-(f) are the benchmark issue's; targets come from the issues. Where an issue names
no number ("cost per line flat", "latency not ballooning", "bounded memory"), the bound used
here is written in the target column.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

# "flat": the costliest batch size's CPU per line at most this many times the cheapest one's
FLAT = 1.25
# "not ballooning": interactive p99 while the batch runs at most this many times the idle p99
BALLOON = 3.0
# "bounded memory": a later round of 1,000 requests peaks at most this much above the first
GROWTH = 1.10


class Row(NamedTuple):
    figure: str
    target: str
    measured: str
    met: bool | None


Result = dict[str, Any]


def num(x: float) -> str:
    """1,234 / 12.3 / 1.23: thousands separated, one decimal from 10 up, two below."""
    if isinstance(x, int) or float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:,.1f}" if abs(x) >= 10 else f"{x:.2f}"


def pct(share: float) -> str:
    return f"{share * 100:.1f} %"


def by_third(seq: Result) -> str:
    """The added p50 over each third of the run, when the result has it (older ones do not)."""
    thirds = seq.get("added_p50_by_third_ms")
    return f"; by third {' / '.join(num(t) for t in thirds)}" if thirds else ""


def _meta_rows(r: Result, seq: Result) -> list[Row]:
    meta = r.get("meta_model")
    if not meta:  # results from before the row existed
        return []
    extra = meta["added_p50_ms"] - seq["added_p50_ms"]
    return [
        Row(
            f"(a) added latency p50, sequential, meta-model over {meta['providers']} providers",
            "<= 1 ms more than one provider",
            f"{num(meta['added_p50_ms'])} ms ({num(extra)} ms more; p99 "
            f"{num(meta['added_p99_ms'])} ms){by_third(meta)}",
            extra <= 1,
        )
    ]


def farm_latency(r: Result) -> list[Row]:
    seq, conc = r["sequential"], r["concurrent"]
    width = f"{conc['width']} concurrent ({r.get('worker_processes', 1)} worker process(es))"

    return [
        Row(
            f"(a) added latency p50, sequential, over a {num(r['upstream_ms'])} ms upstream",
            "<= 6 ms",
            f"{num(seq['added_p50_ms'])} ms (farm {num(seq['farm_p50_ms'])}, "
            f"direct {num(seq['direct_p50_ms'])}){by_third(seq)}",
            seq["added_p50_ms"] <= 6,
        ),
        Row(
            "(a) added latency p99, sequential",
            "<= 15 ms",
            f"{num(seq['added_p99_ms'])} ms",
            seq["added_p99_ms"] <= 15,
        ),
        *_meta_rows(r, seq),
        Row(
            f"(a) added latency p50 / p99 at {width}",
            "—",
            f"{num(conc['added_p50_ms'])} / {num(conc['added_p99_ms'])} ms",
            None,
        ),
        Row(
            f"(a) throughput at {width}",
            ">= 200 req/s",
            f"{num(conc['farm_rps'])} req/s (direct {num(conc['direct_rps'])})",
            conc["farm_rps"] >= 200,
        ),
        Row(
            f"(a) CPU per request, API + workers: sequential / {width}",
            "—",
            f"{num(seq['cpu_ms_per_request'])} / {num(conc['cpu_ms_per_request'])} ms",
            None,
        ),
    ]


def farm_limits(r: Result) -> list[Row]:
    up, down = r["all_up"], r["one_down"]
    both = (up, down)
    return [
        Row(
            f"farm_limits: {num(up['requests'])} requests at 4 providers' "
            f"{num(up['pooled_rpm'])} RPM, {r.get('workers', 1)} worker process(es), wall time",
            "within 5 % of ideal",
            f"{num(up['wall_s'])} s, ideal {num(up['ideal_s'])} s "
            f"({num(up['of_ceiling_pct'])} % of the ceiling)",
            up["wall_s"] <= up["ideal_s"] * 1.05,
        ),
        Row(
            f"farm_limits: {down['down']} down, share of the remaining capacity",
            ">= 95 %",
            f"{num(down['of_ceiling_pct'])} % ({num(down['wall_s'])} s, "
            f"ideal {num(down['ideal_s'])} s)",
            down["of_ceiling_pct"] >= 95,
        ),
        Row(
            "farm_limits: failures reaching the client / wrong answers (all up, one down)",
            "0",
            " and ".join(f"{s['client_failures']} / {s['wrong_answers']}" for s in both),
            all(s["client_failures"] == 0 == s["wrong_answers"] for s in both),
        ),
        Row(
            "farm_limits: upstream 429s (all up, one down)",
            "<= 1 %",
            " and ".join(f"{s['upstream_429']} ({num(s['upstream_429_pct'])} %)" for s in both),
            all(s["upstream_429_pct"] <= 1 for s in both),
        ),
    ]


def worker_drain(r: Result) -> list[Row]:
    return [
        Row(
            f"worker drain: {num(r['tasks'])} tasks on one worker, no API, "
            f"{num(r['latency_ms'])} ms upstream",
            "—",
            f"{num(r['tasks_per_s'])} tasks/s, {num(r['cpu_ms_per_task'])} ms CPU per task",
            None,
        )
    ]


def ttft(r: Result) -> list[Row]:
    first, whole = r["time_to_first_token"], r["non_streaming_reference"]
    return [
        Row(
            f"(e) streaming time to first token, added p50 (chunks {num(r['chunk_delay_ms'])} "
            "ms apart)",
            "<= 10 ms",
            f"{num(first['added_p50_ms'])} ms (farm {num(first['farm_p50_ms'])}, direct "
            f"{num(first['direct_p50_ms'])}; added p99 {num(first['added_p99_ms'])})",
            first["added_p50_ms"] <= 10,
        ),
        Row(
            "(e) for reference: non-streaming added p50 (dispatch alone)",
            "—",
            f"{num(whole['added_p50_ms'])} ms",
            None,
        ),
    ]


def intact(r: Result) -> Row:
    return Row(
        "lost / duplicated / wrong lines",
        "0 / 0 / 0",
        f"{r['lost']} / {r['duplicated']} / {r['wrong_answers']} ({r['status']})",
        r["lost"] == r["duplicated"] == r["wrong_answers"] == 0 and r["status"] == "completed",
    )


def throttled(r: Result, bound: bool) -> Row:
    return Row(
        "upstream 429s",
        "<= 1 %" if bound else "—",
        f"{num(r['upstream_429'])} of {num(r['upstream_requests'])} "
        f"({pct(r['upstream_429_share'])})",
        r["upstream_429_share"] <= 0.01 if bound else None,
    )


def share(r: Result) -> str:
    return (
        f"{pct(r['share_of_ceiling'])} ({num(r['achieved_rps'])} of "
        f"{num(r['ceiling_rps'])} lines/s; {num(r['wall_s'])} s, ideal {num(r['ideal_s'])} s)"
    )


def labelled(label: str, rows: list[Row]) -> list[Row]:
    return [row._replace(figure=f"{label}: {row.figure}") for row in rows]


def batch_throughput(r: Result) -> list[Row]:
    label = f"(b) batch of {num(r['lines'])} lines, 4 x {num(r['rpm'])} RPM"
    ceiling = Row("share of the pooled ceiling", ">= 95 %", share(r), r["share_of_ceiling"] >= 0.95)
    return labelled(label, [ceiling, intact(r), throttled(r, bound=True)])


def batch_one_down(r: Result) -> list[Row]:
    label = f"(c) batch of {num(r['lines'])} lines, {r['faulty_provider']} down"
    ceiling = Row(
        "share of the remaining capacity", ">= 95 %", share(r), r["share_of_ceiling"] >= 0.95
    )
    return labelled(label, [ceiling, intact(r), throttled(r, bound=False)])


def batch_flapping(r: Result) -> list[Row]:
    flap = num(r["flap_s"])
    label = f"(c) batch of {num(r['lines'])} lines, {r['faulty_provider']} flapping"
    ceiling = Row(f"share of the capacity up ({flap} s up, {flap} s down)", "—", share(r), None)
    return labelled(label, [ceiling, intact(r), throttled(r, bound=False)])


def slashed(points: list[Result], key: str, unit: str = "") -> str:
    return " / ".join(num(p[key]) for p in points) + unit


def scaling(r: Result) -> list[Row]:
    by_lines, by_workers = r["by_lines"], r["by_workers"]
    sizes = " / ".join(num(p["lines"]) for p in by_lines)
    counts = " / ".join(str(p["workers"]) for p in by_workers)
    everything = by_lines + by_workers
    return [
        Row(
            f"(d) worker CPU per line at {sizes} lines ({by_lines[0]['workers']} workers)",
            f"flat: largest <= {FLAT} x smallest",
            f"{slashed(by_lines, 'worker_cpu_ms_per_line', ' ms')} "
            f"(x {num(r['cpu_per_line_spread'])})",
            r["cpu_per_line_spread"] <= FLAT,
        ),
        Row(
            f"(d) share of the ceiling ({num(r['ceiling_rps'])} lines/s) at {sizes} lines",
            "—",
            " / ".join(pct(p["share_of_ceiling"]) for p in by_lines),
            None,
        ),
        Row(
            f"(d) lines/s with {counts} worker processes ({num(by_workers[0]['lines'])} lines)",
            "—",
            f"{slashed(by_workers, 'achieved_rps')}; worker CPU per line "
            f"{slashed(by_workers, 'worker_cpu_ms_per_line', ' ms')}",
            None,
        ),
        Row(
            "(d) lost / duplicated lines, every scaling run",
            "0 / 0",
            f"{sum(p['lost'] for p in everything)} / {sum(p['duplicated'] for p in everything)}",
            all(p["lost"] == p["duplicated"] == 0 for p in everything),
        ),
    ]


def batch_faults(r: Result) -> list[Row]:
    rows = []
    for s in r["scenarios"]:
        label = f"batch of {num(s['lines'])} lines, 4 x 600 RPM, default line timeout"
        if s["scenario"] == "kill":
            back = s["back_to_90pct_after_s"]
            after = "not back" if back is None else f"{num(back)} s"
            rows += labelled(
                f"{label}, one of two workers SIGKILLed at 30 %",
                [
                    Row(
                        "back to 90 % of the rate before, after the kill",
                        "<= 10 s",
                        f"{after} (its lines re-sent after {num(s['resent_after_s'])} s; "
                        f"{num(s['resent'].get('worker_died', 0))} re-sent; rate before "
                        f"{num(s['rate_before_rps'])} lines/s)",
                        back is not None and back <= 10,
                    ),
                    intact(s),
                ],
            )
        else:
            rows += labelled(
                f"{label}, one provider hung (60 s call timeout)",
                [
                    Row(
                        "rate until 75 % done, share of the other three's capacity",
                        "—",
                        f"{pct(s['share_of_others'])} ({num(s['achieved_rps'])} of "
                        f"{num(s['others_capacity_rps'])} lines/s); the hung one held at most "
                        f"{num(s['hung_max_in_flight'])} calls",
                        None,
                    )
                ],
            )
    return rows


def batch_upload(r: Result) -> list[Row]:
    i = r["interactive"]
    return [
        Row(
            f"(f) interactive latency p50 / p99 while a {num(r['lines'])}-line "
            f"({num(r['file_mb'])} MB) batch runs ({num(i['rps'])} req/s, "
            f"{num(r['upstream_latency_ms'])} ms upstream)",
            f"not ballooning: p99 <= {num(BALLOON)} x idle p99",
            f"{num(i['busy_p50_ms'])} / {num(i['busy_p99_ms'])} ms, idle "
            f"{num(i['idle_p50_ms'])} / {num(i['idle_p99_ms'])} ms",
            i["busy_p99_ms"] <= BALLOON * i["idle_p99_ms"],
        ),
        Row(
            "(f) that batch: upload + validation time, API peak RSS",
            "—",
            f"{num(r['upload_and_validate_s'])} s, {num(r['api_rss_mb_peak_overall'])} MB "
            f"(idle {num(r['api_rss_mb_before'])} MB)",
            None,
        ),
    ]


def load(r: Result) -> list[Row]:
    rounds = r["rounds"]
    n, total = num(r["requests"]), r["requests"] * len(rounds)
    codes: dict[str, int] = {}
    for w in rounds:
        for code, count in w["outcomes"].items():
            codes[code] = codes.get(code, 0) + count
    bounded = all(
        w[k] <= rounds[0][k] * GROWTH
        for w in rounds[1:]
        for k in ("api_rss_mb_peak", "workers_rss_mb_peak")
    )
    peaks = {k: " / ".join(num(w[k]) for w in rounds) for k in rounds[0] if "rss" in k}
    return [
        Row(
            f"{n} concurrent chat requests, {len(rounds)} rounds, "
            f"{num(r['upstream_latency_ms'])} ms upstream: errors",
            "0",
            f"{r['errors']} of {num(total)} ("
            + ", ".join(f"{c}: {num(v)}" for c, v in sorted(codes.items()))
            + ")",
            r["errors"] == 0,
        ),
        Row(
            f"{n} concurrent: peak RSS per round, API; workers",
            f"bounded: later rounds <= {num(GROWTH)} x the first",
            f"{peaks['api_rss_mb_peak']} MB (idle {num(r['api_rss_mb_idle'])}); "
            f"{peaks['workers_rss_mb_peak']} MB (idle {num(r['workers_rss_mb_idle'])})",
            bounded,
        ),
        Row(
            f"{n} concurrent: latency p50 / p99, wall time per round",
            "—",
            "; ".join(
                f"{num(w['p50_ms'])} / {num(w['p99_ms'])} ms, {num(w['wall_s'])} s" for w in rounds
            ),
            None,
        ),
    ]


def routing(r: Result) -> list[Row]:
    fresh, cached = r["read_every_request"], r["snapshot_0_25_s"]
    return [
        Row(
            f"routing one meta-model request over {r['providers']} providers ({r['targets']} "
            "targets), in the API",
            "<= 1 ms",
            f"mean {num(cached['mean_ms'])} ms, p50 / p99 {num(cached['p50_ms'])} / "
            f"{num(cached['p99_ms'])} ms (reading the live state for every request: mean "
            f"{num(fresh['mean_ms'])} ms, p50 / p99 {num(fresh['p50_ms'])} / "
            f"{num(fresh['p99_ms'])} ms)",
            cached["mean_ms"] <= 1,
        )
    ]


WORKFLOW_FAULTS = {
    "invalid_json": "one provider answering 30 % of its JSON in prose",
    "one_down": "one provider answering every call with a 500",
}


def workflows(r: Result) -> list[Row]:
    rows = []
    for s in r["scenarios"]:
        what = f"(17) workflow batch of {s['lines']:,} lines, {WORKFLOW_FAULTS[s['scenario']]}"
        right = s["steps_right"] == s["lines"] == s["records"] and s["duplicated"] == 0
        rows.append(
            Row(
                f"{what}: lines completed with every step recorded once",
                "all lines, each step once",
                f"{s['steps_right']:,} of {s['lines']:,} ({s['duplicated']} duplicated); "
                f"{num(s['calls_per_line'])} calls a line ({s['upstream_calls']:,} upstream, "
                f"{s['calls_recorded']:,} recorded), {s['calls_failed_over']:,} calls failed "
                f"over, {s['upstream_429']} upstream 429s; {num(s['wall_s'])} s, "
                f"{num(s['lines_per_s'])} lines/s",
                right and s["upstream_calls"] == s["calls_recorded"],
            )
        )
    return rows


REALISTIC = {
    "lognormal": "4 x 120 RPM, lognormal answers (median 1.5 s, p99 ~8 s)",
    "tpm": "4 providers bound by TPM (300-token lines, 36,000 TPM), 200 ms answers",
    "ten": "ten providers of 10-60 RPM, lognormal answers",
    "hidden": "4 x 240 RPM published, 60 % enforced, 200 ms answers",
}


def batch_realistic(r: Result) -> list[Row]:
    rows = []
    for s in r["scenarios"]:
        what = f"(13) batch of {s['lines']:,} lines, {REALISTIC.get(s['scenario'], s['scenario'])}"
        share = s["share_of_ceiling"] or 0.0
        rows.append(
            Row(
                f"{what}: share of the simulator's binding ceiling",
                ">= 90 % (1,000 lines)",
                f"{pct(share)} ({num(s['achieved_rps'])} of {num(s['ceiling_rps'])} lines/s; "
                f"{num(s['wall_s'])} s; 99 % -> 100 % in {num(s['tail_99_to_100_s'])} s)",
                share >= 0.9,
            )
        )
        rows.append(
            Row(
                f"{what}: upstream 429s; lost / duplicated / wrong",
                "<= 1 % (3 % hidden); 0 / 0 / 0",
                f"{s['upstream_429']} ({pct(s['upstream_429_share_of_lines'])}); "
                f"{s['lost']} / {s['duplicated']} / {s['wrong_answers']}; worker CPU "
                f"{num(s['worker_cpu_ms_per_line'])} ms per line",
                s["lost"] == s["duplicated"] == s["wrong_answers"] == 0
                and s["upstream_429_share_of_lines"]
                <= (0.03 if s["scenario"] == "hidden" else 0.01),
            )
        )
        if s.get("estimate_error") is not None:
            rows.append(_realistic_tail(what, s))
    return rows


def _realistic_tail(what: str, s: dict[str, Any]) -> Row:
    """The estimate's error and the tail (99 % -> 100 %) of one realistic batch."""
    error = s["estimate_error"]
    return Row(
        f"{what}: estimate error; 99 % -> 100 % of lines; hedged / discarded",
        "estimate within +/- 10 %; tail <= p99 + 2 s",
        f"{error * 100:+.1f} % (estimated {num(s['estimated_s'])} s, took "
        f"{num(s['wall_s'])} s); {num(s['tail_99_to_100_s'])} s; "
        f"{s['hedged']} / {s['discarded']}",
        abs(error) <= 0.1,
    )


MATRIX_LIMITS = {
    "rpm": "RPM-bound",
    "tpm": "TPM-bound (counted per second)",
    "daily": "daily cap running out mid-batch",
    "hidden": "limit hidden at 60 %",
}


def batch_matrix(r: Result) -> list[Row]:
    """One row per cell of the issue-13 matrix: share, 429s, tail, estimate, costs."""
    rows = []
    for c in r["cells"]:
        answers, _, limit = c["scenario"].partition("/")
        what = (
            "ten providers of 10-60 RPM"
            if c["scenario"] == "ten"
            else (f"{answers} answers, {MATRIX_LIMITS.get(limit, limit)}")
        )
        share = c["share_of_ceiling"] or 0.0
        bound = 0.9 if c["lines"] < 10_000 else 0.95
        cap = 0.03 if limit == "hidden" else 0.01
        error = c.get("estimate_error")
        rows.append(
            Row(
                f"(13) matrix, {num(c['lines'])} lines, {what} (load {c.get('loadavg_1m', '?')})",
                f">= {bound * 100:.0f} %; 429s <= {cap * 100:.0f} %; estimate +/- 10 %",
                f"{pct(share)} of {num(c['ceiling_rps'])} lines/s; 429s {c['upstream_429']} "
                f"({pct(c['upstream_429_share_of_lines'])}); 99 -> 100 % "
                f"{num(c['tail_99_to_100_s'] or 0)} s; estimate "
                f"{'—' if error is None else f'{error * 100:+.0f} %'}; CPU "
                f"{num(c['worker_cpu_ms_per_line'])} ms/line; Redis "
                f"{num(c['redis_bytes_per_line'])} B/line; RSS API / worker "
                f"{num(c['api_peak_rss_mb'])} / {num(c['worker_peak_rss_mb'])} MB",
                share >= bound
                and c["upstream_429_share_of_lines"] <= cap
                and (error is None or abs(error) <= 0.1),
            )
        )
    return rows


def hedging(r: Result) -> list[Row]:
    off, on = r["off"], r["on"]
    share = r["stragglers"]["straggler_rate"]
    extra = r["extra_upstream_calls"]
    return [
        Row(
            f"(16) interactive p99 time to answer with {pct(share)} stragglers "
            f"(+{num(r['stragglers']['straggler_ms'] / 1000)} s), hedging off -> on",
            "at least halves, <= 5 % extra upstream calls",
            f"{num(off['p99_ms'])} -> {num(on['p99_ms'])} ms (p50 {num(off['p50_ms'])} -> "
            f"{num(on['p50_ms'])} ms); {pct(extra)} extra upstream calls, "
            f"{on['hedged']} of {r['requests']} answered by the hedge",
            r["p99_ratio"] <= 0.5 and extra <= 0.05,
        )
    ]


def aimd(r: Result) -> list[Row]:
    rows = []
    for k, p in enumerate(r["phases"]):
        took = p["requests_to_within_25pct"]
        low, high = p["learned_min_max_second_half"]
        rows.append(
            Row(
                f"(16) AIMD concurrency, hidden limit 20 -> 5 -> 20, phase {k + 1} (hidden "
                f"{p['hidden']}): requests until within 25 %; 429s in steady state",
                "<= 50 requests; <= 2 %",
                f"{'never' if took is None else took} of {r['requests_per_phase']}; "
                f"{pct(p['steady_429_share'])} (learned {num(low)}-{num(high)} over the "
                "phase's second half)",
                took is not None and took <= 50 and p["steady_429_share"] <= 0.02,
            )
        )
    return rows


def embeddings(r: Result) -> list[Row]:
    """bench/embeddings.py: the share of the binding ceiling (issue 17: >= 95 %)."""
    share = r["share_of_ceiling"]
    label = (
        f"embeddings batch of {num(r['lines'])} lines, 3 families x {num(r['rpm_per_provider'])}"
        " RPM"
    )
    intact = r["lost"] == 0 and r["duplicated"] == 0 and r["wrong_vectors"] == 0
    return labelled(
        label,
        [
            Row(
                "share of the binding ceiling",
                ">= 95 %",
                f"{pct(share)} ({num(r['achieved_rps'])} of {num(r['ceiling_rps'])} lines/s)",
                share is not None and share >= 0.95,
            ),
            Row(
                "lines lost / duplicated / wrong vector; upstream 429s",
                "0 / 0 / 0",
                f"{r['lost']} / {r['duplicated']} / {r['wrong_vectors']}; {r['upstream_429']}",
                intact,
            ),
        ],
    )


RowsOf = dict[str, Callable[[Result], list[Row]]]

# in the table's order: the issue's (a) to (f), then the rest (issue 16's routing rows are
# added by bench/rows_routing.py, whose ROWS the report reads)
ROWS: RowsOf = {
    "farm_latency": farm_latency,
    "batch_throughput": batch_throughput,
    "batch_one_down": batch_one_down,
    "batch_flapping": batch_flapping,
    "scaling": scaling,
    "ttft": ttft,
    "batch_upload": batch_upload,
    "load": load,
    "farm_limits": farm_limits,
    "worker_drain": worker_drain,
    "routing": routing,
    "batch_realistic": batch_realistic,
    "batch_faults": batch_faults,
    "batch_matrix": batch_matrix,
    "hedging": hedging,
    "aimd": aimd,
    "workflows": workflows,
    "embeddings": embeddings,
}
