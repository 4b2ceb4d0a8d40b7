"""build_specs: from catalogue limits to buckets, counters and caps (pure, no backend)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from relay_core.catalogue.models import Limits
from relay_core.limits import BucketSpec, Limiter, MemoryBackend, Reason, build_specs
from relay_core.limits.plan import PACING_MARGIN
from relay_core.settings import Settings
from tests.unit.limits._catalogue import model, provider

NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC).timestamp()


def test_no_limits_means_only_the_pause_keys():
    prov = provider(Limits())
    plan = build_specs("x", prov, prov.models[0], NOW)
    assert (plan.buckets, plan.counters, plan.concurrency) == ((), (), ())
    assert plan.pauses == ("x:prov:paused", "x:prov/m1:paused")
    assert (plan.provider, plan.model) == ("prov", "m1")


@pytest.mark.parametrize(
    ("limits", "rate", "capacity"),
    [
        (Limits(rpm=30), 0.5, 1.0),
        (Limits(rpm=600), 10.0, 1.0),  # evenly spaced: no burst, not even a second's worth
        (Limits(rpm=600, burst=3), 10.0, 3.0),  # unless the catalogue allows one
    ],
)
def test_rpm_paces_strictly_a_little_under_the_rate(limits: Limits, rate: float, capacity: float):
    prov = provider(limits)
    (rpm,) = build_specs("x", prov, prov.models[0], NOW).buckets
    paced = rate * (1 - PACING_MARGIN)
    assert rpm == BucketSpec("x:prov:rpm", paced, capacity, Reason.rpm, "prov")


def test_tpm_holds_one_seconds_worth():
    prov = provider(Limits(tpm=6000), model("m", Limits(tpm=30)))
    specs = build_specs("x", prov, prov.models[0], NOW).buckets
    assert [b.key for b in specs] == ["x:prov:tpm", "x:prov/m:tpm"]
    assert [b.rate for b in specs] == pytest.approx([98.0, 0.49])
    assert [b.capacity for b in specs] == pytest.approx([98.0, 1.0])


def test_every_present_limit_applies_at_both_levels():
    prov = provider(
        Limits(rpm=60, tpm=600, rpd=100, tpd=1000, concurrency=4),
        model("m", Limits(rpm=30, rpd=10, concurrency=2)),
        timeout_s=20,
    )
    plan = build_specs("x", prov, prov.models[0], NOW)
    assert [b.key for b in plan.buckets] == ["x:prov:rpm", "x:prov:tpm", "x:prov/m:rpm"]
    assert [c.key for c in plan.counters] == [
        "x:prov:rpd:2025-01-15",
        "x:prov:tpd:2025-01-15",
        "x:prov/m:rpd:2025-01-15",
    ]
    assert [(s.key, s.limit, s.lease_ttl_s) for s in plan.concurrency] == [
        ("x:prov:concurrency", 4, 40.0),
        ("x:prov/m:concurrency", 2, 40.0),
    ]
    custom = build_specs("x", prov, prov.models[0], NOW, lease_ttl_s=600)
    assert {s.lease_ttl_s for s in custom.concurrency} == {600}


def test_daily_counters_name_their_window_and_outlive_it():
    prov = provider(Limits(rpd=10, daily_reset="00:00 America/Los_Angeles"))
    (rpd,) = build_specs("x", prov, prov.models[0], NOW).counters  # 04:00 in Los Angeles
    assert rpd.key == "x:prov:rpd:2025-01-15"
    assert rpd.reset_at == datetime(2025, 1, 16, 8, 0, tzinfo=UTC).timestamp()
    assert rpd.ttl_s == 20 * 3600 + 86_400
    assert rpd.ttl_s >= 86_400


def test_a_model_inherits_the_providers_reset_unless_it_sets_its_own():
    la = "00:00 America/Los_Angeles"
    prov = provider(
        Limits(rpd=10, daily_reset=la),
        model("inherits", Limits(rpd=5)),
        model("own", Limits(rpd=5, daily_reset="00:00 UTC")),
    )
    inherits, own = (build_specs("x", prov, m, NOW).counters[1] for m in prov.models)
    assert inherits.reset_at == datetime(2025, 1, 16, 8, 0, tzinfo=UTC).timestamp()
    assert own.reset_at == datetime(2025, 1, 16, 0, 0, tzinfo=UTC).timestamp()


def test_the_limiter_keys_live_under_the_settings_prefix():
    limiter = Limiter.from_settings(Settings(key_prefix="acme"), MemoryBackend())
    prov = provider(Limits(rpm=60))
    assert limiter.plan(prov, prov.models[0], NOW).buckets[0].key == "acme:limits:prov:rpm"
