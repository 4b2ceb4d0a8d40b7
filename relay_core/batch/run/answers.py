"""The exact cache for batch lines: a line whose answer is cached completes without an
upstream call, and a line's answer is stored for the next run of the same file.

A batch line has no headers: only deterministic lines (``temperature: 0`` or a ``seed``)
are cached (:func:`relay_core.answers.policy.cache_policy`), in the batch owner's scope. The
cache is read on a line's first visit only (a line handed back to a queue has been looked up).
"""

from __future__ import annotations

from relay_core.answers.cache import AnswerCache, hit_reply
from relay_core.answers.policy import cache_keys, cache_policy
from relay_core.dispatch.envelope import Envelope, Reply
from relay_core.schemas.chat import ChatCompletionRequest
from relay_core.settings import Settings

KIND = "batch"


class LineCache:
    def __init__(self, cache: AnswerCache, settings: Settings) -> None:
        self.cache = cache
        self.settings = settings

    async def lookup(self, env: Envelope) -> Reply | None:
        request = env.request
        if not isinstance(request, ChatCompletionRequest):  # embeddings are not cached
            return None
        policy = cache_policy(request, self.settings)
        if not policy.read or env.attempts > 0:
            return None
        keys = cache_keys(request, self.settings, policy)
        found = await self.cache.get(env.owner, keys, KIND)
        return None if found is None else hit_reply(env.id, found.answer)

    async def store(self, env: Envelope, reply: Reply) -> None:
        request = env.request
        if not isinstance(request, ChatCompletionRequest):
            return
        policy = cache_policy(request, self.settings)
        if policy.write:
            keys = cache_keys(request, self.settings, policy)
            await self.cache.put(env.owner, keys, reply, policy.ttl_s, KIND)
