"""Rate-limit response headers, in each provider style the simulator can imitate.

=============  ==============================================================================
``openai``     ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}``; resets are durations
               such as ``"6m0s"``, ``"1.5s"``, ``"120ms"`` (OpenAI, Groq, Cerebras, Together)
``mistral``    ``x-ratelimit-{limit,remaining}-{req,tokens}-minute``
``anthropic``  ``anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}``; resets are
               RFC 3339 times
``none``       nothing (Gemini, Ollama)
=============  ==============================================================================

Resets say when the budget is back to full (the newest request in the window expires).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from relay_sim.config import HeaderStyle
from relay_sim.limits import RateSnapshot


def go_duration(seconds: float) -> str:
    """Seconds as a Go duration string, as OpenAI's reset headers write them."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    minutes, secs = divmod(seconds, 60.0)
    text = f"{secs:.3f}".rstrip("0").rstrip(".") + "s"
    if minutes >= 60:
        hours, minutes = divmod(minutes, 60)
        return f"{int(hours)}h{int(minutes)}m{text}"
    return f"{int(minutes)}m{text}" if minutes else text


def rfc3339(at: float) -> str:
    """An RFC 3339 UTC time, rounded up to the second (a reset is never early)."""
    return datetime.fromtimestamp(math.ceil(at), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rate_headers(style: HeaderStyle, snap: RateSnapshot, now: float) -> dict[str, str]:
    if style == "none":
        return {}
    out: dict[str, str] = {}
    dims = (
        ("requests", "req", snap.limit_requests, snap.remaining_requests, snap.reset_requests_s),
        ("tokens", "tokens", snap.limit_tokens, snap.remaining_tokens, snap.reset_tokens_s),
    )
    for dim, short, limit, remaining, reset in dims:
        if limit is None or remaining is None or reset is None:
            continue
        if style == "openai":
            out[f"x-ratelimit-limit-{dim}"] = str(limit)
            out[f"x-ratelimit-remaining-{dim}"] = str(remaining)
            out[f"x-ratelimit-reset-{dim}"] = go_duration(reset)
        elif style == "mistral":
            out[f"x-ratelimit-limit-{short}-minute"] = str(limit)
            out[f"x-ratelimit-remaining-{short}-minute"] = str(remaining)
        else:
            out[f"anthropic-ratelimit-{dim}-limit"] = str(limit)
            out[f"anthropic-ratelimit-{dim}-remaining"] = str(remaining)
            out[f"anthropic-ratelimit-{dim}-reset"] = rfc3339(now + reset)
    return out


def retry_headers(retry_after_s: float, *, seconds: bool, millis: bool) -> dict[str, str]:
    """``retry-after`` in whole seconds (rounded up) and/or ``retry-after-ms``."""
    out: dict[str, str] = {}
    if seconds:
        out["retry-after"] = str(max(1, math.ceil(retry_after_s)))
    if millis:
        out["retry-after-ms"] = str(max(1, math.ceil(retry_after_s * 1000)))
    return out
