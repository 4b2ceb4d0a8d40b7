"""Whether one request reads and writes the exact cache, and for how long it keeps.

* Only deterministic requests (``temperature: 0``, or a ``seed``) are cached by default;
  any other opts in by naming a TTL (``x-relay-cache-ttl: <seconds>``).
* ``Cache-Control: no-cache``: the cache is not read, but the answer is stored;
  ``no-store``: neither. ``x-relay-cache-ttl: 0`` reads but does not store.
* Streamed requests are not cached (docs/answers.md says why).
* Near-duplicates (:mod:`relay_core.answers.near`) are answered too with
  ``RELAY_NEAR_CACHE_ENABLED`` or ``x-relay-near-cache: on`` (``off`` turns them off).
"""

from __future__ import annotations

from dataclasses import dataclass

from relay_core.answers.cache import CacheKeys
from relay_core.answers.cache_key import request_digest
from relay_core.answers.near import near_digest
from relay_core.errors import InvalidRequest
from relay_core.schemas.chat import ChatCompletionRequest
from relay_core.settings import Settings

TTL_HEADER = "x-relay-cache-ttl"
NEAR_HEADER = "x-relay-near-cache"


@dataclass(frozen=True, slots=True)
class CachePolicy:
    read: bool
    write: bool
    ttl_s: int
    near: bool = False  # near-duplicates too (docs/answers.md): off unless asked

    @property
    def active(self) -> bool:
        return self.read or self.write


OFF = CachePolicy(read=False, write=False, ttl_s=0)


def deterministic(request: ChatCompletionRequest) -> bool:
    return request.temperature == 0 or request.seed is not None


def _ttl(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        ttl = int(value.strip())
    except ValueError:
        ttl = -1
    if ttl < 0:
        raise InvalidRequest(
            f"{TTL_HEADER} must be a whole number of seconds (0 or more), not {value!r}.",
            param=TTL_HEADER,
        )
    return ttl


def _directives(cache_control: str | None) -> set[str]:
    if not cache_control:
        return set()
    return {part.strip().lower().split("=", 1)[0] for part in cache_control.split(",")}


def cache_policy(
    request: ChatCompletionRequest,
    settings: Settings,
    *,
    cache_control: str | None = None,
    ttl: str | None = None,
    near: str | None = None,
    routed: bool | None = None,
) -> CachePolicy:
    """``routed``: what a routing policy's ``cache`` said for the request (docs/routing.md):
    ``True`` opts it in as a TTL header would, ``False`` keeps it out, None says nothing."""
    asked_ttl = _ttl(ttl)
    wants_near = _switch(near, settings.near_cache_enabled)
    if not settings.cache_enabled or request.stream or routed is False:
        return OFF
    if not deterministic(request) and asked_ttl is None and not routed:
        return OFF
    directives = _directives(cache_control)
    if "no-store" in directives:
        return OFF
    ttl_s = min(settings.cache_ttl_s if asked_ttl is None else asked_ttl, settings.cache_max_ttl_s)
    read = "no-cache" not in directives
    return CachePolicy(read=read, write=ttl_s > 0, ttl_s=ttl_s, near=wants_near)


def _switch(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    word = value.strip().lower()
    if word not in ("on", "off"):
        raise InvalidRequest(
            f"{NEAR_HEADER} must be 'on' or 'off', not {value!r}.", param=NEAR_HEADER
        )
    return word == "on"


def cache_keys(
    request: ChatCompletionRequest,
    settings: Settings,
    policy: CachePolicy,
    *,
    fallback_any: bool = False,
) -> CacheKeys:
    """The request's exact digest, and its near-duplicate one when the policy says so."""
    exact = request_digest(request, settings, fallback_any=fallback_any)
    near = near_digest(request, settings, fallback_any=fallback_any) if policy.near else None
    return CacheKeys(exact=exact, near=near)
