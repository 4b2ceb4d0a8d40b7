"""What the API builds once at start-up and shares with every request (``app.state.relay``)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from celery import Celery
from redis.asyncio import Redis

from relay_api.replies import ReplyHub
from relay_core.breaker import Breaker
from relay_core.breaker import RedisBackend as BreakerRedis
from relay_core.catalogue.loader import enabled_providers, log_startup, resolve_catalogue
from relay_core.catalogue.models import Catalogue, ProviderConfig
from relay_core.dispatch.broker import create_celery
from relay_core.limits import Limiter, RedisBackend
from relay_core.redis_pool import redis_pool
from relay_core.routing.ranking import Ranker
from relay_core.settings import Settings

log = logging.getLogger("relay.api")


@dataclass
class ApiState:
    settings: Settings
    catalogue: Catalogue
    providers: list[ProviderConfig]  # enabled ones
    redis: Redis
    celery: Celery
    hub: ReplyHub
    limiter: Limiter
    breaker: Breaker
    ranker: Ranker
    key_ids: dict[str, str]  # gateway key -> owner id (a hash; the key itself is never stored)

    @classmethod
    async def build(cls, settings: Settings) -> ApiState:
        catalogue, source = resolve_catalogue(settings)
        enabled, disabled = enabled_providers(catalogue, settings.mode)
        log_startup(source, enabled, disabled)
        redis = redis_pool(settings.redis_url, max_connections=256)
        hub = ReplyHub(redis, settings.key_prefix)
        await hub.start()
        return cls(
            settings=settings,
            catalogue=catalogue,
            providers=enabled,
            redis=redis,
            celery=create_celery(settings, [p.name for p in enabled]),
            hub=hub,
            limiter=Limiter.from_settings(settings, RedisBackend(redis)),
            breaker=Breaker.from_settings(settings, BreakerRedis(redis)),
            ranker=Ranker(settings.strategy, settings.mode),
            key_ids={
                k.get_secret_value(): owner_id(k.get_secret_value()) for k in settings.api_keys
            },
        )

    async def close(self) -> None:
        await self.hub.stop()
        await self.redis.aclose(close_connection_pool=True)
        self.celery.close()


def owner_id(gateway_key: str) -> str:
    return "k" + hashlib.sha256(gateway_key.encode()).hexdigest()[:15]
