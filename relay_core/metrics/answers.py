"""``relay_answer_cache_total{kind, result}``: the exact cache's lookups (``hit``, ``miss``)
and stores, farm-wide (counted in Redis by :mod:`relay_core.answers.cache`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector


class AnswerCacheCollector(Collector):
    def __init__(self, stats: Mapping[tuple[str, str], int]) -> None:
        self.stats = stats

    def collect(self) -> Iterable[CounterMetricFamily]:
        family = CounterMetricFamily(
            "relay_answer_cache",
            "Exact answer cache: lookups (hit, miss) and stores, by request kind.",
            labels=["kind", "result"],
        )
        for (kind, result), count in sorted(self.stats.items()):
            family.add_metric([kind, result], count)
        yield family
