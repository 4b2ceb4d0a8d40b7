"""Answer times: the sampled values (a fixed seed, no clock), not how long anything took."""

from __future__ import annotations

import random
import statistics

import pytest

from relay_sim.config import SimProvider
from relay_sim.timing import first_byte_s, frame_gaps_s, lognormal_quantile, output_s, sigma_for

DRAWS = 5000


def _provider(**fields) -> SimProvider:
    return SimProvider.model_validate(
        {"name": "p", "api": "openai", "models": [{"id": "m"}]} | fields
    )


def _draws(config: SimProvider, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [first_byte_s(config, rng) * 1000 for _ in range(DRAWS)]


def test_lognormal_median_and_p99_are_the_configured_ones():
    sigma = sigma_for(1500, 8000)  # the figures: median 1.5 s, p99 ~8 s
    assert sigma == pytest.approx(0.72, abs=0.01)
    draws = _draws(_provider(latency_median_ms=1500, latency_sigma=sigma))
    cuts = statistics.quantiles(draws, n=100)
    assert statistics.median(draws) == pytest.approx(1500, rel=0.05)
    assert cuts[89] == pytest.approx(lognormal_quantile(1500, sigma, 0.90), rel=0.08)
    assert cuts[98] == pytest.approx(8000, rel=0.15)
    assert max(draws) > 3 * statistics.median(draws)  # a heavy tail, not a uniform band


def test_sigma_zero_is_exactly_the_median_and_adds_to_the_floor():
    config = _provider(latency_ms=100, latency_median_ms=400)
    assert _draws(config) == [pytest.approx(500)] * DRAWS


def test_the_same_seed_replays_the_same_times():
    config = _provider(latency_median_ms=200, latency_sigma=1.0, jitter_ms=50, latency_ms=60)
    assert _draws(config, seed=3) == _draws(config, seed=3)
    assert _draws(config, seed=3) != _draws(config, seed=4)


def test_stragglers_are_the_configured_share_and_add_their_time():
    config = _provider(latency_ms=100, straggler_rate=0.02, straggler_ms=20_000)
    draws = _draws(config)
    slow = [d for d in draws if d > 1000]
    assert slow == [pytest.approx(20_100)] * len(slow)
    assert len(slow) / DRAWS == pytest.approx(0.02, abs=0.006)


def test_uniform_jitter_is_unchanged_and_nothing_configured_draws_nothing():
    draws = _draws(_provider(latency_ms=100, jitter_ms=50))
    assert min(draws) >= 50 and max(draws) <= 150
    rng = random.Random(5)
    before = rng.getstate()
    assert first_byte_s(_provider(latency_ms=10), rng) == pytest.approx(0.01)
    assert rng.getstate() == before  # a seeded run's other draws (error_rate) stay as they were


def test_output_time_grows_with_the_completion_tokens():
    config = _provider(ms_per_output_token=20)
    assert output_s(config, 0) == 0
    assert output_s(config, 50) == pytest.approx(1.0)
    assert output_s(config, 500) == pytest.approx(10.0)


def test_a_stream_spreads_its_output_time_over_the_gaps_between_frames():
    gaps = frame_gaps_s(5, 0.01, 2.0)
    assert gaps[0] == 0
    assert gaps[1:] == [pytest.approx(0.51)] * 4
    assert sum(gaps) == pytest.approx(2.0 + 4 * 0.01)
    assert frame_gaps_s(1, 0.01, 2.0) == [2.0]
    assert frame_gaps_s(3, 0.0, 0.0) == [0.0, 0.0, 0.0]
