"""Session affinity: keep a conversation on the provider and model that served it.

Providers cache prompt prefixes (OpenAI, Anthropic, Gemini, DeepSeek and Groq all discount or
speed up a repeated prefix), so a session that stays on one ``provider/model`` gets faster and
cheaper turns. ``X-Session-ID`` names the session; the pin lives at
``{prefix}:session:{owner}:{hash of the session id}`` for ``RELAY_SESSION_TTL_S``.

The pin is a preference, never a wait: when the pinned target cannot serve *now* (no tokens,
breaker open) the ranking stands, and whatever serves the turn becomes the new pin.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from redis.asyncio import Redis

from relay_core.routing.ranking import IDLE, LiveState
from relay_core.routing.targets import Target
from relay_core.settings import Settings


class Affinity:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.prefix = settings.key_prefix
        self.ttl_s = settings.session_ttl_s
        self.enabled = settings.session_affinity

    def key(self, owner: str, session_id: str) -> str:
        digest = hashlib.sha256(session_id.encode()).hexdigest()[:32]
        return f"{self.prefix}:session:{owner}:{digest}"

    async def pinned(self, owner: str, session_id: str | None) -> str | None:
        """The session's ``provider/model``, or None (no session, no pin, or affinity off)."""
        if not self.enabled or not session_id:
            return None
        raw = await self.redis.get(self.key(owner, session_id))
        return None if raw is None else raw.decode() if isinstance(raw, bytes) else str(raw)

    async def pin(self, owner: str, session_id: str | None, provider: str, model: str) -> None:
        """Remember (or refresh) what served this session's last turn."""
        if self.enabled and session_id:
            await self.redis.set(self.key(owner, session_id), f"{provider}/{model}", ex=self.ttl_s)


def prefer_pinned(
    ranked: Sequence[Target], live: Mapping[str, LiveState], pinned: str | None
) -> list[Target]:
    """``ranked`` with the pinned target first if it can serve now; else unchanged."""
    out = list(ranked)
    if pinned is None:
        return out
    for i, target in enumerate(out):
        if target.key == pinned:
            state = live.get(target.key, IDLE)
            if state.wait_s <= 0 and not state.breaker_open:
                return [target, *out[:i], *out[i + 1 :]]
            break
    return out
