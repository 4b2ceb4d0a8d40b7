"""What the API builds once at start-up and shares with every request (``app.state.relay``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from celery import Celery
from opentelemetry.trace import Tracer
from redis.asyncio import Redis

from relay_api.audit import AuditLog
from relay_api.replies import ReplyHub
from relay_api.stream_mux import MAX_LANES, StreamMux
from relay_api.stream_slots import StreamSlots
from relay_core.answers.cache import AnswerCache
from relay_core.breaker import Breaker
from relay_core.breaker import RedisBackend as BreakerRedis
from relay_core.catalogue.loader import enabled_providers, log_startup, resolve_catalogue
from relay_core.catalogue.models import Catalogue, ProviderConfig
from relay_core.dispatch.broker import create_celery
from relay_core.forecast.spend import SpendStore
from relay_core.limits import Limiter, RedisBackend
from relay_core.limits.quota import KeyQuotas
from relay_core.owner_migration import move_legacy_owners
from relay_core.owners import legacy_owner_id, owner_id, owner_secret
from relay_core.redis_pool import redis_pool
from relay_core.routing.audit import AuditStore
from relay_core.routing.live import LiveCache
from relay_core.routing.outcomes import OutcomeCache, OutcomeStore
from relay_core.routing.ranking import Ranker
from relay_core.settings import Settings
from relay_core.storage import ObjectStorage, open_storage
from relay_core.storage.marker import announce
from relay_core.tracing import make_tracer

log = logging.getLogger("relay.api")


@dataclass
class ApiState:
    settings: Settings
    catalogue: Catalogue
    providers: list[ProviderConfig]  # enabled ones
    redis: Redis
    celery: Celery
    hub: ReplyHub
    streams: StreamMux  # reads every stream this process relays, on a pool of its own
    stream_slots: StreamSlots  # open streams per gateway key
    limiter: Limiter
    breaker: Breaker
    ranker: Ranker
    live: LiveCache
    outcomes: OutcomeCache  # what each target's answers were worth, per task family
    key_ids: dict[str, str]  # gateway key -> owner id (an HMAC; the key is never stored)
    quotas: KeyQuotas  # per gateway key quotas (RELAY_KEY_RPM, ...)
    spend: SpendStore  # each provider's and key's recent pace (the forecasts)
    audits: AuditLog  # each chat request's route audit, written after its answer
    cache: AnswerCache  # the exact answer cache (docs/answers.md)
    storage: ObjectStorage  # file bytes: a folder, or an S3 bucket (relay_core.storage)
    tracer: Tracer  # request spans (relay_core/tracing.py): a no-op one unless configured

    @classmethod
    async def build(cls, settings: Settings, tracer: Tracer | None = None) -> ApiState:
        catalogue, source = resolve_catalogue(settings)
        enabled, disabled = enabled_providers(catalogue, settings.mode)
        log_startup(source, enabled, disabled)
        key_ids = owner_ids(settings)  # before any connection: a bad kept secret stops here
        redis = redis_pool(settings.redis_url, max_connections=settings.redis_max_connections)
        legacy = {legacy_owner_id(key): owner for key, owner in key_ids.items()}
        await move_legacy_owners(redis, settings.key_prefix, legacy)
        hub = ReplyHub(redis, settings.key_prefix, settings.redeliver_after_s)
        await hub.start()
        limiter = Limiter.from_settings(settings, RedisBackend(redis))
        breaker = Breaker.from_settings(settings, BreakerRedis(redis))
        storage = open_storage(settings)
        try:
            await announce(redis, settings.key_prefix, storage)  # workers check they see it
        except OSError:  # the store is down now: uploads fail until it is back, chat does not
            log.warning("could not reach the file storage at start", exc_info=True)
        log.info("files are stored in %s", storage.describe())
        return cls(
            settings=settings,
            catalogue=catalogue,
            providers=enabled,
            redis=redis,
            celery=create_celery(settings, [p.name for p in enabled]),
            hub=hub,
            streams=StreamMux(redis_pool(settings.redis_url, MAX_LANES + 2), settings.key_prefix),
            stream_slots=StreamSlots(settings.max_streams_per_key),
            limiter=limiter,
            breaker=breaker,
            ranker=Ranker(
                settings.strategy,
                settings.mode,
                explore=settings.routing_explore,
                escalate_below=settings.routing_escalate_below,
            ),
            live=LiveCache(limiter, breaker, settings.routing_state_ttl_s),
            outcomes=OutcomeCache(
                OutcomeStore(redis, settings.key_prefix), settings.routing_state_ttl_s
            ),
            key_ids=key_ids,
            quotas=KeyQuotas(limiter, settings),
            spend=SpendStore(redis, settings.key_prefix, settings.forecast_tau_s),
            audits=AuditLog(AuditStore(redis, settings.key_prefix, settings.route_audit_ttl_s)),
            cache=AnswerCache.from_settings(redis, settings),
            storage=storage,
            tracer=tracer or make_tracer(settings, "relay-api"),
        )

    async def close(self) -> None:
        await self.audits.drain()
        await self.hub.stop()
        await self.streams.stop()
        await self.redis.aclose(close_connection_pool=True)
        self.celery.close()


def owner_ids(settings: Settings) -> dict[str, str]:
    """Each gateway key's owner id (no secret is made or read when there are no keys)."""
    if not settings.api_keys:
        return {}
    secret = owner_secret(settings)
    return {k.get_secret_value(): owner_id(secret, k.get_secret_value()) for k in settings.api_keys}
