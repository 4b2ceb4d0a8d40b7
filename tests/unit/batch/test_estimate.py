"""The estimate: each provider's binding ceiling, learned token costs, daily caps left."""

from __future__ import annotations

import math
from typing import Any

import pytest

from relay_core.batch.client.ceilings import Daily
from relay_core.batch.client.estimate import Estimate, FarmView, RouteCount, estimate
from relay_core.batch.client.estimate_view import learned_costs
from relay_core.batch.client.finish import DAY_S, finish_s, served
from relay_core.catalogue.models import Limits, ModelConfig, ProviderConfig, TpmCounting
from relay_core.limits.plan import PACING_MARGIN, build_specs
from relay_core.limits.specs import Capacity, Level, Reason
from relay_core.routing.targets import Selection, Target, all_targets
from relay_core.usage import UsageRow

PACED = 1 - PACING_MARGIN
NOW = 1_800_000_000.0


def provider(name: str, counting: TpmCounting = "reserve", **limits: int) -> ProviderConfig:
    return ProviderConfig(
        name=name,
        api="openai",
        base_url=f"http://{name}.test/v1",
        limits=Limits(**limits),
        models=[ModelConfig(id=f"{name}-m")],
        tpm_counting=counting,
    )


def view(providers: list[ProviderConfig], **extra: object) -> tuple[list[Target], FarmView]:
    targets = all_targets(providers)
    plans = {t.key: build_specs("t", t.provider, t.model, NOW) for t in targets}
    fields: dict[str, object] = {
        "plans": plans,
        "levels": {},
        "able": {t.key for t in targets},
        "now": NOW,
        **extra,
    }
    return targets, FarmView(**fields)  # type: ignore[arg-type]


def run(providers: list[ProviderConfig], lines: int, backlog: int = 0, **extra: Any) -> Estimate:
    prompt = extra.pop("prompt_tokens", None)
    cap = extra.pop("max_tokens", None)
    targets, farm = view(providers, **extra)
    counts = [RouteCount(model="m", count=lines, prompt_tokens=prompt, max_tokens=cap)]

    def resolve(route: Selection) -> list[Target]:
        return targets

    return estimate(counts, resolve, farm, backlog)


def test_a_tpm_bound_provider_takes_longer_than_its_rpm_would_allow() -> None:
    rpm_only = run([provider("a", rpm=600)], 600, prompt_tokens=100, max_tokens=200)
    both = run([provider("a", rpm=600, tpm=6000)], 600, prompt_tokens=100, max_tokens=200)
    assert rpm_only.rate_per_s == pytest.approx(10 * PACED)
    assert rpm_only.providers[0].binding == "rpm"
    # 300 tokens a line against 100 tokens/s: a third of a line per second, not ten.
    assert both.rate_per_s == pytest.approx(100 * PACED / 300, abs=1e-3)
    assert both.providers[0].binding == both.targets[0].binding == "tpm"
    assert both.targets[0].tokens_per_line == 300
    assert both.estimated_seconds > 25 * rpm_only.estimated_seconds


def test_learned_output_tokens_replace_max_tokens_in_the_cost_of_a_line() -> None:
    learned = {"a/a-m": (80.0, 20.0)}  # answers used 20 tokens of their 200
    usage = provider("a", "usage", rpm=600, tpm=6000)
    est = run([usage], 60, prompt_tokens=100, max_tokens=200, learned=learned)
    assert est.targets[0].tokens_per_line == 120  # the prompt given, the output learned
    assert est.rate_per_s == pytest.approx(100 * PACED / 120, abs=1e-3)
    unknown_prompt = run([provider("a", "usage", tpm=6000)], 60, learned=learned)
    assert unknown_prompt.targets[0].tokens_per_line == 100  # both learned


def test_a_provider_reserving_the_cap_is_charged_the_cap_whatever_was_learned() -> None:
    learned = {"a/a-m": (80.0, 20.0)}
    reserve = provider("a", "reserve", rpm=600, tpm=6000)
    est = run([reserve], 60, prompt_tokens=100, max_tokens=200, learned=learned)
    assert est.targets[0].tokens_per_line == 300  # the whole cap, as the provider counts


def test_concurrency_over_the_answer_time_can_bind() -> None:
    est = run([provider("a", rpm=600, concurrency=4)], 100, answer_s=2.0)
    assert est.rate_per_s == pytest.approx(2.0)
    assert est.providers[0].binding == "concurrency"
    assert run([provider("a", rpm=600, concurrency=4)], 100).providers[0].binding == "rpm"


def test_unhealthy_providers_take_no_lines_and_the_backlog_shares_the_rest() -> None:
    providers = [provider("a", rpm=600), provider("b", rpm=600)]
    est = run(providers, 588, backlog=294, able={"a/a-m"})
    assert est.rate_per_s == pytest.approx(10 * PACED)
    assert est.estimated_seconds == pytest.approx(60.0, abs=0.05)
    assert est.estimated_seconds_with_backlog == pytest.approx(90.0, abs=0.05)
    assert [(t.provider, t.healthy) for t in est.targets] == [("a", True), ("b", False)]


def test_a_daily_cap_left_stops_its_provider_until_the_reset() -> None:
    providers = [provider("a", rpm=600), provider("c", rpm=600, rpd=1000)]
    targets, _ = view(providers)
    plan = build_specs("t", targets[1].provider, targets[1].model, NOW)
    levels = {
        "c/c-m": Capacity(
            0.0,
            None,
            (Level(Reason.rpm, "c", 1, 1), Level(Reason.rpd, "c", available=100, limit=1000)),
        )
    }
    est = run(providers, 588, levels=levels)
    # c serves its 100 lines left, a the rest: (588 - 100) / 9.8 lines/s.
    assert est.estimated_seconds == pytest.approx(488 / (10 * PACED), abs=0.05)
    daily = est.providers[1]
    assert daily.daily_lines_left == 100
    assert daily.daily_resets_in_s == pytest.approx(plan.counters[0].reset_at - NOW, abs=0.1)


def test_lines_beyond_every_daily_cap_wait_for_the_next_day() -> None:
    est = run([provider("c", rpm=600, rpd=100)], 250)
    assert est.estimated_seconds > DAY_S
    assert "days" in est.warnings[0]


def test_served_and_finish_follow_the_daily_windows() -> None:
    day = Daily(left=10, per_day=100, resets_in_s=50)
    assert served(1.0, day, 5) == 5
    assert served(1.0, day, 40) == 10  # spent until the reset
    assert served(1.0, day, 60) == 20  # then the new day's
    assert served(1.0, day, 50 + DAY_S + 30) == 10 + 100 + 30
    assert finish_s(30, [(1.0, day)]) == pytest.approx(70, abs=0.02)
    assert finish_s(30, [(1.0, None), (1.0, day)]) == pytest.approx(20, abs=0.02)
    assert math.isinf(finish_s(1e9, [(1.0, day)]))
    assert finish_s(0, [(1.0, day)]) == 0.0


def test_learned_costs_are_the_means_over_answered_calls() -> None:
    rows = [
        UsageRow("d1", "a", "a-m", requests=6, prompt_tokens=400, completion_tokens=100, errors=1),
        UsageRow("d2", "a", "a-m", requests=5, prompt_tokens=600, completion_tokens=100),
        UsageRow("d2", "b", "b-m", requests=3, prompt_tokens=30, completion_tokens=30),
    ]
    assert learned_costs(rows) == {"a/a-m": (100.0, 20.0)}  # b has too few answers
