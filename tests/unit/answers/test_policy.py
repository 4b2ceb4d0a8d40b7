"""Who reads and writes the exact cache: deterministic requests, opt-ins, Cache-Control."""

from __future__ import annotations

from typing import Any

import pytest

from relay_core.answers.policy import OFF, cache_policy
from relay_core.errors import InvalidRequest
from relay_core.schemas.chat import ChatCompletionRequest
from relay_core.settings import Settings

SETTINGS = Settings(cache_ttl_s=600, cache_max_ttl_s=3600)


def req(**fields: Any) -> ChatCompletionRequest:
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], **fields}
    return ChatCompletionRequest.model_validate(body)


def test_only_deterministic_requests_by_default() -> None:
    assert cache_policy(req(temperature=0), SETTINGS).ttl_s == 600
    assert cache_policy(req(seed=3, temperature=1), SETTINGS).read
    assert cache_policy(req(), SETTINGS) == OFF
    assert cache_policy(req(temperature=0.7), SETTINGS) == OFF


def test_a_ttl_opts_in_and_is_capped() -> None:
    policy = cache_policy(req(temperature=0.7), SETTINGS, ttl="120")
    assert (policy.read, policy.write, policy.ttl_s) == (True, True, 120)
    assert cache_policy(req(temperature=0), SETTINGS, ttl="99999").ttl_s == 3600
    zero = cache_policy(req(temperature=0), SETTINGS, ttl="0")
    assert (zero.read, zero.write) == (True, False)


@pytest.mark.parametrize("bad", ["soon", "-5", "1.5"])
def test_a_bad_ttl_is_refused(bad: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        cache_policy(req(temperature=0), SETTINGS, ttl=bad)
    assert caught.value.param == "x-relay-cache-ttl"


def test_cache_control() -> None:
    no_cache = cache_policy(req(temperature=0), SETTINGS, cache_control="no-cache")
    assert (no_cache.read, no_cache.write) == (False, True)
    assert cache_policy(req(temperature=0), SETTINGS, cache_control="No-Store") == OFF
    both = cache_policy(req(temperature=0), SETTINGS, cache_control="max-age=0, no-store")
    assert both == OFF


def test_streams_and_a_disabled_cache_are_never_cached() -> None:
    assert cache_policy(req(temperature=0, stream=True), SETTINGS) == OFF
    assert cache_policy(req(temperature=0), Settings(cache_enabled=False)) == OFF


def test_a_routing_policy_opts_a_request_in_or_keeps_it_out() -> None:
    assert cache_policy(req(), SETTINGS, routed=True).read  # as a TTL header would
    assert cache_policy(req(temperature=0), SETTINGS, routed=False) == OFF
    assert cache_policy(req(), SETTINGS, routed=None) == OFF
