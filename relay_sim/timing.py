"""How long a simulated provider takes to answer: pure functions of its configuration and the
simulator's seeded RNG, so a run (and a test of the distribution) can be replayed.

An answer's time is its *first byte* (:func:`first_byte_s`) plus its *output time*
(:func:`output_s`). The first byte is the sum of

- ``latency_ms`` ± ``jitter_ms`` (uniform): a floor, the network;
- a lognormal draw of median ``latency_median_ms`` and shape ``latency_sigma`` (the log of the
  time is normal with mean ``ln(median)`` and deviation ``sigma``; its ``q`` quantile is
  ``median * exp(sigma * z_q)``, :func:`lognormal_quantile`): the heavy tail of LLM answers;
- ``straggler_ms`` for a share ``straggler_rate`` of answers: the rare call stuck behind a
  slow replica.

The output time is ``ms_per_output_token`` per completion token; a stream spreads it evenly
over the gaps between its frames (:func:`frame_gaps_s`). The RNG is drawn only for the parts
that are configured, so turning none of them on leaves a seeded run's other draws (e.g.
``error_rate``) as they were.
"""

from __future__ import annotations

import math
import random
from statistics import NormalDist

from relay_sim.config import SimProvider


def first_byte_s(config: SimProvider, rng: random.Random) -> float:
    """Seconds until the answer starts (one draw)."""
    ms = config.latency_ms
    if config.jitter_ms:
        ms += rng.uniform(-config.jitter_ms, config.jitter_ms)
    ms = max(0.0, ms)
    if config.latency_median_ms:
        mu = math.log(config.latency_median_ms)
        ms += rng.lognormvariate(mu, config.latency_sigma) if config.latency_sigma else math.exp(mu)
    if config.straggler_rate and rng.random() < config.straggler_rate:
        ms += config.straggler_ms
    return ms / 1000


def output_s(config: SimProvider, completion_tokens: int) -> float:
    """Seconds the answer takes to produce ``completion_tokens`` tokens."""
    return config.ms_per_output_token * completion_tokens / 1000


def frame_gaps_s(frames: int, chunk_delay_s: float, output_time_s: float) -> list[float]:
    """The wait before each of ``frames`` stream frames: none before the first, then
    ``chunk_delay_s`` plus an even share of ``output_time_s`` (all of it before the only
    frame of a one-frame stream)."""
    if frames <= 1:
        return [output_time_s] * frames
    share = output_time_s / (frames - 1)
    return [0.0] + [chunk_delay_s + share] * (frames - 1)


def lognormal_quantile(median_ms: float, sigma: float, q: float) -> float:
    """The ``q`` quantile (0 < q < 1) of the lognormal part, in milliseconds."""
    return median_ms * math.exp(sigma * NormalDist().inv_cdf(q))


def sigma_for(median_ms: float, p99_ms: float) -> float:
    """The ``latency_sigma`` whose p99 is ``p99_ms`` for a median of ``median_ms`` (a median of
    1.5 s with a p99 of 8 s: about 0.72)."""
    return math.log(p99_ms / median_ms) / NormalDist().inv_cdf(0.99)
