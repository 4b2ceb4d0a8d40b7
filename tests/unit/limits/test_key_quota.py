"""Per gateway key quotas on the limiter (memory backend, a controlled clock): each kind of
quota refuses with its own code and a Retry-After, one key's use never touches another's,
and the answer's usage corrects the tokens taken."""

from __future__ import annotations

import pytest

from relay_core.errors import KeyDailyTokensExceeded, KeyRpmExceeded, KeyTpmExceeded
from relay_core.limits import Limiter, MemoryBackend
from relay_core.limits.quota import KeyQuotas
from relay_core.settings import Settings

NOW = 1_800_000_000.0  # a fixed instant, well inside a UTC day
A, B = "kaaaaaaaaaaaaaaa", "kbbbbbbbbbbbbbbb"


def quotas(**settings: object) -> KeyQuotas:
    s = Settings.model_validate(settings)
    return KeyQuotas(Limiter.from_settings(s, MemoryBackend()), s)


async def test_no_quota_takes_nothing() -> None:
    q = quotas()
    assert q.enabled is False
    assert await q.take(A, 10**9, "r1", NOW) is None


async def test_rpm_refuses_the_next_request_with_the_wait_until_one_refills() -> None:
    q = quotas(key_rpm=2)
    assert await q.take(A, 10, "r1", NOW) is not None
    assert await q.take(A, 10, "r2", NOW) is not None
    with pytest.raises(KeyRpmExceeded) as caught:
        await q.take(A, 10, "r3", NOW)
    err = caught.value
    assert (err.status_code, err.error_type, err.code) == (
        429,
        "rate_limit_exceeded",
        "key_quota_rpm",
    )
    assert err.retry_after == pytest.approx(30.0)  # 2 a minute: one every 30 s
    assert await q.take(B, 10, "r4", NOW) is not None  # another key is not affected
    assert await q.take(A, 10, "r5", NOW + 30.0) is not None  # refilled


async def test_tpm_and_daily_tokens_have_their_own_codes() -> None:
    q = quotas(key_tpm=1000)
    await q.take(A, 1000, "r1", NOW)
    with pytest.raises(KeyTpmExceeded, match="tokens a minute"):
        await q.take(A, 10, "r2", NOW)
    q = quotas(key_daily_tokens=500)
    await q.take(A, 400, "r1", NOW)
    with pytest.raises(KeyDailyTokensExceeded) as caught:
        await q.take(A, 200, "r2", NOW)
    assert caught.value.code == "key_quota_daily_tokens"
    assert caught.value.retry_after is not None and caught.value.retry_after > 0  # the reset


async def test_an_override_replaces_the_default_for_one_key_only() -> None:
    q = quotas(key_rpm=100, key_quotas={A: {"rpm": 1}, B: {"rpm": None}})
    await q.take(A, 1, "r1", NOW)
    with pytest.raises(KeyRpmExceeded):
        await q.take(A, 1, "r2", NOW)
    assert q.plan(B, NOW) is None  # lifted for B
    assert q.plan("kccccccccccccccc", NOW) is not None  # the default for everyone else


async def test_the_answer_corrects_the_tokens_taken() -> None:
    q = quotas(key_daily_tokens=1000)
    plan = await q.take(A, 900, "r1", NOW)  # an estimate of 900
    assert plan is not None
    await q.settle(plan, "r1", 100, 900, NOW)  # the answer used 100
    assert await q.take(A, 800, "r2", NOW) is not None  # 900 left, not 100


def test_overrides_are_keyed_by_owner_id_and_a_pasted_key_is_not_echoed() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as caught:
        Settings.model_validate({"key_quotas": {"sk-live-secret": {"rpm": 1}}})
    assert "keyed by owner ids" in str(caught.value)
    assert "sk-live-secret" not in str(caught.value)
