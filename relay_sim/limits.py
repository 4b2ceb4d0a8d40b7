"""The limits of one simulated provider or model: RPM/TPM over a sliding window, RPD/TPD per
day, and concurrency. :meth:`LimitSet.check` says whether a request fits (and if not, which
budget ran out and for how long); :meth:`LimitSet.take` debits it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from relay_sim.config import SimLimits
from relay_sim.window import DailyWindow, SlidingWindow


class LimitKind(StrEnum):
    """What ran out. The values are OpenAI's 429 ``error.type``."""

    requests = "requests"
    tokens = "tokens"


@dataclass(frozen=True, slots=True)
class Rejection:
    kind: LimitKind
    what: str  # e.g. "requests per minute (RPM)"
    limit: int
    used: int
    requested: int
    retry_after_s: float
    concurrency: bool = False  # the concurrency cap refused it (not a rate)

    def message(self, subject: str) -> str:
        return (
            f"Rate limit reached for {subject} on {self.what}: Limit {self.limit}, "
            f"Used {self.used}, Requested {self.requested}. "
            f"Please try again in {self.retry_after_s:.3f}s."
        )


@dataclass(slots=True)
class RateSnapshot:
    """What the rate-limit headers report (``None``: that budget is unlimited)."""

    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests_s: float | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens_s: float | None = None

    def over(self, fallback: RateSnapshot) -> RateSnapshot:
        """This snapshot, with each budget it lacks taken from ``fallback``."""
        req = self if self.limit_requests is not None else fallback
        tok = self if self.limit_tokens is not None else fallback
        return RateSnapshot(
            req.limit_requests,
            req.remaining_requests,
            req.reset_requests_s,
            tok.limit_tokens,
            tok.remaining_tokens,
            tok.reset_tokens_s,
        )


Window = SlidingWindow | DailyWindow

# A limit by its catalogue name.
LimitName = Literal["rpm", "tpm", "rpd", "tpd"]


@dataclass(slots=True)
class Budget:
    """One enforced limit. ``published`` is the figure headers and 429 messages state; the
    window enforces ``published * hidden_factor`` (the same figure unless the limit is hidden)."""

    name: LimitName
    kind: LimitKind
    what: str
    published: int
    window: Window

    def amount(self, tokens: int) -> int:
        return 1 if self.kind == LimitKind.requests else tokens

    def remaining(self, now: float) -> int:
        """What the headers say is left: the published figure less what was used."""
        return max(0, math.floor(self.published - self.window.used(now)))


class LimitSet:
    """Every limit of one provider or one model."""

    __slots__ = ("_requests", "_tokens", "budgets", "concurrency")

    def __init__(
        self,
        limits: SimLimits,
        window_s: float = 60.0,
        daily_reset: str = "00:00 UTC",
        hidden_factor: float = 1.0,
    ):
        self.concurrency = limits.concurrency
        scale = window_s / 60.0
        minute = "minute" if window_s == 60.0 else f"{window_s:g}s window"
        per_minute: list[tuple[LimitName, LimitKind, str, int | None]] = [
            ("rpm", LimitKind.requests, f"requests per {minute} (RPM)", limits.rpm),
            ("tpm", LimitKind.tokens, f"tokens per {minute} (TPM)", limits.tpm),
        ]
        per_day: list[tuple[LimitName, LimitKind, str, int | None]] = [
            ("rpd", LimitKind.requests, "requests per day (RPD)", limits.rpd),
            ("tpd", LimitKind.tokens, "tokens per day (TPD)", limits.tpd),
        ]
        self.budgets: list[Budget] = [
            Budget(
                name,
                kind,
                what,
                int(max(1.0, n * scale)),
                SlidingWindow(max(1.0, n * scale * hidden_factor), window_s),
            )
            for name, kind, what, n in per_minute
            if n is not None
        ] + [
            Budget(name, kind, what, n, DailyWindow(max(1.0, n * hidden_factor), daily_reset))
            for name, kind, what, n in per_day
            if n is not None
        ]
        # The budget each header family reports: the per-minute one, else the daily one.
        self._requests = next((b for b in self.budgets if b.kind == LimitKind.requests), None)
        self._tokens = next((b for b in self.budgets if b.kind == LimitKind.tokens), None)

    def check(self, tokens: int, now: float, in_flight: int = 0) -> Rejection | None:
        """Why a request costing ``tokens`` does not fit now (the longest wait), or None.

        ``in_flight`` counts the request itself.
        """
        worst: Rejection | None = None
        if self.concurrency is not None and in_flight > self.concurrency:
            worst = Rejection(
                LimitKind.requests,
                "concurrent requests",
                self.concurrency,
                in_flight - 1,
                1,
                1.0,
                concurrency=True,
            )
        for budget in self.budgets:
            amount = budget.amount(tokens)
            wait = budget.window.wait_s(amount, now)
            if wait > 0 and (worst is None or wait > worst.retry_after_s):
                used = round(budget.window.used(now))
                worst = Rejection(budget.kind, budget.what, budget.published, used, amount, wait)
        return worst

    def take(self, tokens: int, now: float) -> None:
        for budget in self.budgets:
            budget.window.take(budget.amount(tokens), now)

    def take_tokens(self, tokens: int, now: float) -> None:
        """Debit ``tokens`` from the token budgets only (usage counted after the answer)."""
        for budget in self.budgets:
            if budget.kind == LimitKind.tokens:
                budget.window.take(tokens, now)

    def snapshot(self, now: float) -> RateSnapshot:
        snap = RateSnapshot()
        if self._requests is not None:
            snap.limit_requests = self._requests.published
            snap.remaining_requests = self._requests.remaining(now)
            snap.reset_requests_s = self._requests.window.reset_s(now)
        if self._tokens is not None:
            snap.limit_tokens = self._tokens.published
            snap.remaining_tokens = self._tokens.remaining(now)
            snap.reset_tokens_s = self._tokens.window.reset_s(now)
        return snap

    def clear(self) -> None:
        for budget in self.budgets:
            budget.window.clear()
