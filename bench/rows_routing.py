"""Rows of issue 16's routing targets that :mod:`bench.rows` does not hold: learned routing
under drift, ``auto`` against all-paid, streamed hedging, and what the profile and tracing
cost a request (the table's order: :data:`ROWS`)."""

from __future__ import annotations

from bench.rows import ROWS as BASE
from bench.rows import Result, Row, RowsOf, num, pct


def learned(r: Result) -> list[Row]:
    coding, chat = r["coding"], r["chat"]
    took = coding["requests_until_drifting_under_10pct"]
    shares = coding["drifting_share_per_50"]
    return [
        Row(
            "(16) learned routing: one provider's coding success 0.9 -> 0.6; its share of "
            "coding first choices (per 50 requests after the change)",
            "< 10 % within 300 requests",
            f"{'never' if took is None else took} requests to under 10 % for good; shares "
            f"{' / '.join(pct(s) for s in shares)}; chat share stays "
            f"{pct(chat['drifting_share_per_50'][-1])}; usable answers "
            f"{pct(coding['usable_answers'])}",
            took is not None and took <= 300,
        )
    ]


def auto(r: Result) -> list[Row]:
    paid, mode = r["all_paid"], r["auto"]
    return [
        Row(
            f"(16) auto mode, free candidates failing 30 % of hard requests "
            f"({pct(r['hard_share'])} of the mix): success against all-paid; paid calls",
            ">= 95 % of all-paid success; <= 25 % paid calls",
            f"{pct(r['auto_success_vs_all_paid'])} ({pct(mode['success'])} vs "
            f"{pct(paid['success'])}; at the first call {pct(mode['first_call_success'])} vs "
            f"{pct(paid['first_call_success'])}); {pct(mode['paid_calls_per_request'])} paid "
            f"calls, {num(mode['upstream_calls_per_request'])} calls a request (free only: "
            f"{pct(r['free']['success'])} success)",
            r["auto_success_vs_all_paid"] >= 0.95 and mode["paid_calls_per_request"] <= 0.25,
        )
    ]


def hedging_streams(r: Result) -> list[Row]:
    s = r.get("streams")
    if not s:  # results from before streams were hedged
        return []
    off, on, extra = s["off"], s["on"], s["extra_upstream_calls"]
    share = r["stragglers"]["straggler_rate"]
    return [
        Row(
            f"(16) streamed p99 time to first token with {pct(share)} stragglers "
            f"(+{num(r['stragglers']['straggler_ms'] / 1000)} s), hedging off -> on",
            "at least halves, <= 5 % extra upstream calls",
            f"{num(off['ttft_p99_ms'])} -> {num(on['ttft_p99_ms'])} ms (p50 "
            f"{num(off['ttft_p50_ms'])} -> {num(on['ttft_p50_ms'])} ms); {pct(extra)} extra "
            f"upstream calls, {s['requests']} streams",
            s["ttft_p99_ratio"] <= 0.5 and extra <= 0.05,
        )
    ]


def overhead(r: Result) -> list[Row]:
    short, long, off = r["profile_short"], r["profile_32k"], r["tracing_off"]
    return [
        Row(
            "(16) request profile, p99 CPU per request: short / "
            f"{num(r['long_prompt_tokens'])}-token",
            "<= 0.2 ms / <= 1 ms",
            f"{num(short['cpu_p99_us'] / 1000)} / {num(long['cpu_p99_us'] / 1000)} ms (p50 "
            f"{num(short['cpu_p50_us'] / 1000)} / {num(long['cpu_p50_us'] / 1000)} ms; wall "
            f"p99 {num(short['wall_p99_us'] / 1000)} / {num(long['wall_p99_us'] / 1000)} ms)",
            short["cpu_p99_us"] <= 200 and long["cpu_p99_us"] <= 1000,
        ),
        Row(
            "(16) tracing with the exporter off: the spans of one request, added p50",
            "<= 0.3 ms",
            f"{num(off['cpu_p50_us'] / 1000)} ms CPU (p99 {num(off['cpu_p99_us'] / 1000)} ms; "
            f"recording every span in memory: p50 "
            f"{num(r['tracing_recorded_in_memory']['cpu_p50_us'] / 1000)} ms)",
            off["cpu_p50_us"] <= 300,
        ),
    ]


def _after(rows: RowsOf, name: str, extra: RowsOf) -> RowsOf:
    """``rows`` with ``extra`` placed right after ``name``."""
    out: RowsOf = {}
    for key, make in rows.items():
        out[key] = make
        if key == name:
            out.update(extra)
    return out


def _hedging_both(r: Result) -> list[Row]:
    return BASE["hedging"](r) + hedging_streams(r)


ROWS: RowsOf = _after(
    {**BASE, "hedging": _hedging_both},
    "routing",
    {"overhead": overhead, "learned": learned, "auto": auto},
)
