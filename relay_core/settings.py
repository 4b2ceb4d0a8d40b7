"""Relay's settings: one pydantic-settings object, environment prefix ``RELAY_``.

Built once at start-up (API lifespan, worker init, CLI) and passed down; never a module global.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Mode(StrEnum):
    free = "free"  # never use paid tiers
    auto = "auto"  # paid tiers when free capacity is exhausted or free ones likely fail
    paid = "paid"  # paid tiers too, ranked like the rest


class Strategy(StrEnum):
    roundrobin = "roundrobin"
    random = "random"
    weighted = "weighted"
    least_loaded = "least_loaded"


class ContextMode(StrEnum):
    off = "off"  # never trim: an over-long conversation is refused (400)
    static = "static"  # the last N messages
    dynamic = "dynamic"  # as many recent messages as fit the window
    reservoir = "reservoir"  # recent messages + an extractive summary of older ones
    adaptive = "adaptive"  # dynamic for coding conversations, reservoir otherwise


OWNER_ID = re.compile(r"^(k[0-9a-f]{15}|anonymous)$")  # relay_core/owners.py


class KeyQuota(BaseModel):
    """One gateway key's quota (None: no limit of that kind)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rpm: PositiveInt | None = None
    tpm: PositiveInt | None = None
    daily_tokens: PositiveInt | None = None  # per UTC day


class Settings(BaseSettings):
    # hide_input_in_errors: a gateway key pasted into the wrong variable is never echoed.
    model_config = SettingsConfigDict(
        env_prefix="RELAY_", extra="ignore", env_file=None, hide_input_in_errors=True
    )

    # Catalogue: RELAY_CONFIG, else ./relay.yaml, else the built-in demo catalogue.
    config: Path | None = None
    # Use the built-in demo catalogue (simulated providers) whatever files exist.
    demo: bool = False
    redis_url: str = "redis://127.0.0.1:6379/0"
    # The API process's Redis pool (workers size theirs from their concurrency). Streams do
    # not hold these while they wait: one reader per API process serves them all.
    redis_max_connections: int = Field(default=256, ge=4)
    key_prefix: str = "relay"
    # Gateway keys, comma-separated. None configured: the API binds to 127.0.0.1 only.
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    # Keys the owner ids (HMAC of each gateway key, relay_core/owners.py). None: one is made
    # and kept in {data_dir}/owner-secret (0600). Set it when API processes share no folder.
    owner_secret: SecretStr | None = None

    mode: Mode = Mode.free
    strategy: Strategy = Strategy.least_loaded
    # How long the API ranks on one read of the limits and breakers (relay_core/routing/live.py);
    # 0 reads them for every request.
    routing_state_ttl_s: float = Field(default=0.25, ge=0)
    # Learned routing (docs/routing.md): the share of requests ranked on Thompson draws of
    # each target's learned success instead of its mean (exploration), and, in auto mode, the
    # learned success of the best free candidate under which paid ones compete with it.
    routing_explore: float = Field(default=0.05, ge=0, le=0.2)
    routing_escalate_below: float = Field(default=0.7, ge=0, le=1)
    meta_model: str = "meta-model"
    # Hedged requests (relay_core/dispatch/hedge.py, docs/routing.md): an interactive whole
    # answer not back after its target's learned p95 answer time is sent again to another
    # provider with capacity to spare; the first answer wins. Off by default; a request may
    # say x-relay-hedge: on|off. At most hedge_budget hedges per call (per worker process),
    # and none while more than hedge_failure_ceiling of recent calls failed.
    hedging: bool = False
    hedge_budget: float = Field(default=0.05, ge=0, le=0.2)
    hedge_failure_ceiling: float = Field(default=0.2, ge=0, le=1)

    # The full audit of each chat request (GET /v1/requests/{id}/route) is kept this long;
    # 0 keeps none.
    route_audit_ttl_s: int = Field(default=3600, ge=0)

    # Per gateway key quotas (docs/routing.md, "Budgets"): requests and tokens a minute and
    # tokens a UTC day, for every key; RELAY_KEY_QUOTAS overrides them per owner id, as JSON:
    # {"k0123456789abcde": {"rpm": 600, "tpm": null}} (a field left out keeps the default).
    key_rpm: int | None = Field(default=None, gt=0)
    key_tpm: int | None = Field(default=None, gt=0)
    key_daily_tokens: int | None = Field(default=None, gt=0)
    key_quotas: dict[str, KeyQuota] = Field(default_factory=dict)
    # The time constant (seconds) of the spend forecast's moving averages (GET /v1/usage).
    forecast_tau_s: float = Field(default=120.0, gt=0)

    host: str = "127.0.0.1"
    port: int = 8000
    request_timeout_s: float = Field(default=120.0, gt=0)
    max_request_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    # POST /v1/files bodies (multipart, the whole body) may be this large (docs/security.md).
    max_upload_bytes: int = Field(default=200 * 1024 * 1024, gt=0)
    # Streams one gateway key may have open at once in an API process (429 beyond).
    max_streams_per_key: int = Field(default=64, gt=0)
    # HTTP reading (relay_api/http_protocol.py, docs/security.md): a request's line and
    # headers may take this many bytes (431 beyond) and must arrive within this many seconds
    # (408); its body must arrive within the body timeout plus one second per
    # http_body_min_rate bytes received, so a large upload at a fair rate is never cut.
    http_max_header_bytes: int = Field(default=64 * 1024, ge=1024)
    http_header_timeout_s: float = Field(default=10.0, gt=0)
    http_body_timeout_s: float = Field(default=30.0, gt=0)
    http_body_min_rate: int = Field(default=64 * 1024, gt=0)
    # GET /metrics: one collection (Redis reads, rendering) serves every scrape for this many
    # seconds (0: collect on each scrape, one at a time). With a token, /metrics needs
    # "Authorization: Bearer <token>"; without, it is open (keep it off the internet).
    metrics_cache_s: float = Field(default=1.0, ge=0)
    metrics_token: SecretStr | None = None
    # OpenTelemetry traces (relay_core/tracing.py): an OTLP/HTTP collector's base URL, e.g.
    # http://127.0.0.1:4318 (Jaeger). Unset or empty: no tracing, nothing exported.
    otlp_endpoint: str | None = None

    # Workers
    # Slots (calls in flight) per worker process: at least this many, and more as the
    # providers' rate x their measured answer time requires, up to the maximum (docs/design.md).
    worker_concurrency: int = Field(default=64, gt=0)
    worker_max_concurrency: int = Field(default=512, gt=0)
    max_attempts: int = Field(default=6, gt=0)
    # How long a worker may wait for a token in-place before re-queueing the task.
    token_wait_max_s: float = Field(default=2.0, ge=0)
    visibility_timeout_s: int = Field(default=300, gt=0)
    # A request held by a worker that shows no sign of life for this long (its hold list is
    # not refreshed: it died) is published again by the API waiting on it (docs/faults.md).
    redeliver_after_s: float = Field(default=3.0, gt=0)
    # An interactive request waits in the queue for capacity at most this long, else 429.
    max_queue_wait_s: float = Field(default=30.0, ge=0)
    # The longest countdown a re-queued task gets (well under the visibility timeout).
    requeue_delay_max_s: float = Field(default=5.0, gt=0)
    # On SIGTERM a worker lets in-flight calls run this long, then hands them back to their
    # queues; the API lets open requests finish for as long.
    shutdown_grace_s: float = Field(default=20.0, ge=0)
    # Serve a worker's metrics on this port (for workers on machines without the API), on
    # this address: loopback unless a scraper elsewhere needs it (docs/security.md).
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    worker_metrics_address: str = "127.0.0.1"

    # Circuit breakers
    breaker_failures: int = Field(default=5, gt=0)  # consecutive failures that open it
    breaker_ratio: float = Field(default=0.5, gt=0, le=1)  # failure ratio over the window
    breaker_window_s: float = Field(default=60.0, gt=0)
    breaker_min_calls: int = Field(default=10, gt=0)  # calls in the window before ratio counts
    breaker_cooldown_s: float = Field(default=5.0, gt=0)
    breaker_cooldown_max_s: float = Field(default=300.0, gt=0)

    # Storage (files, batch outputs) and embedded services. File bytes go to the folder
    # storage_dir unless storage_url names an S3 bucket (s3://bucket/prefix), which workers on
    # other machines reach with no shared disk; s3_endpoint_url is a store other than AWS
    # (MinIO, Ceph, R2...). Credentials: the usual AWS_* variables (docs/operations.md).
    storage_dir: Path = Path(".relay/files")
    storage_url: str | None = Field(default=None, pattern=r"^s3://[^/]+(/.*)?$")
    s3_endpoint_url: str | None = Field(default=None, pattern=r"^https?://")
    data_dir: Path = Path(".relay")
    sim_url: str = "http://127.0.0.1:8900"

    # Batches (docs/batch.md)
    batch_max_file_bytes: int = Field(default=200 * 1024 * 1024, gt=0)
    batch_max_lines: int = Field(default=50_000, gt=0)
    # The longest line (bytes) a batch input file may hold: refused at upload and validation,
    # so no line costs a worker more than this to parse and count on a visit.
    batch_max_line_bytes: int = Field(default=1024 * 1024, gt=0)
    # Upstream attempts that failed (5xx, timeouts, garbage; not 429s) after which a batch
    # line fails with its last upstream answer instead of retrying until the window ends.
    batch_max_line_attempts: int = Field(default=8, gt=0)
    # The shortest completion_window accepted (OpenAI's is 24h; tests lower it).
    batch_min_window_s: float = Field(default=24 * 3600.0, gt=0)
    # A dispatched line with no sign of life for this long is re-enqueued by the sweeper.
    batch_line_timeout_s: float = Field(default=180.0, gt=0)
    # How often each worker's feeder and sweeper look at the running batches.
    batch_tick_s: float = Field(default=0.1, gt=0)
    # Lines in flight per batch: the pooled rate times (the recent answer time + this).
    batch_window_s: float = Field(default=0.25, gt=0)
    # Feed batches at this fraction of the pooled capacity (below 1 leaves room for chat).
    batch_pace: float = Field(default=1.0, gt=0, le=2)
    # A batch line whose visit has run this many times its provider's p99 answer time (as the
    # worker measured it), and at least batch_hedge_min_s, is sent again to another candidate;
    # the first answer is recorded, the other discarded and counted. 0: never.
    batch_hedge_after_p99: float = Field(default=1.5, ge=0)
    batch_hedge_min_s: float = Field(default=1.0, ge=0)
    # A batch whose output files cannot be written (storage full, read-only, ...) is tried
    # again after this long, doubled at each failure up to the maximum (docs/batch.md).
    batch_finalize_retry_s: float = Field(default=5.0, gt=0)
    batch_finalize_retry_max_s: float = Field(default=300.0, gt=0)

    session_affinity: bool = True
    session_ttl_s: int = Field(default=24 * 3600, gt=0)

    # Context management (docs/context.md); a request may override the mode (context_mode).
    context_mode: ContextMode = ContextMode.dynamic
    context_static_messages: int = Field(default=20, gt=0)
    context_summary_tokens: int = Field(default=512, gt=0)
    # A chat request may carry at most this many messages (400 beyond, before they are
    # parsed): long agent loops run to hundreds; each message costs ~1 KiB of API memory.
    max_messages: int = Field(default=2048, gt=0)
    # Embeddings (docs/embeddings.md): at most this many inputs per request (OpenAI's own
    # limit), and where a request may fail over: another model whose vectors have the same
    # length (``same_dimension``), or only the named model's other providers (``same_model``).
    embeddings_max_inputs: int = Field(default=2048, gt=0)  # a batch line: 2,048 always
    embeddings_failover: Literal["same_dimension", "same_model"] = "same_dimension"
    # Consistent output (docs/streaming.md): a directive merged into the system prompt, and
    # the normalizer that strips provider preambles from answers.
    style_directive: str = ""
    normalize_output: bool = False
    # Answers (docs/answers.md): an answer that is not the JSON its response_format asked for
    # is asked for again this many times on the same candidate, then fails over.
    repair_max_attempts: int = Field(default=2, ge=0, le=10)
    # Workflow runs (docs/workflows.md) are kept this long after their last step.
    workflow_run_ttl_s: int = Field(default=7 * 24 * 3600, gt=0)
    # The exact answer cache: on for deterministic requests (temperature 0 or a seed) and
    # those that opt in with x-relay-cache-ttl; per gateway key unless shared.
    cache_enabled: bool = True
    cache_shared: bool = False
    cache_ttl_s: int = Field(default=24 * 3600, gt=0)
    cache_max_ttl_s: int = Field(default=30 * 24 * 3600, gt=0)
    # Near-duplicates (docs/answers.md): off unless this or x-relay-near-cache: on.
    near_cache_enabled: bool = False
    # Usage counters (GET /v1/usage) are kept this many days.
    usage_retention_days: int = Field(default=90, gt=0)

    log_format: str = "text"
    flower_user: str = "relay"
    # The default works on loopback only: `relay flower` beyond it wants a strong one.
    flower_password: SecretStr = SecretStr("relay")
    # After 3 failed Flower logins a client is locked out this long, doubled at each further
    # failure up to the maximum; while locked, even the right password is not tried.
    flower_lockout_s: float = Field(default=5.0, gt=0)
    flower_lockout_max_s: float = Field(default=60.0, gt=0)
    # Beyond loopback, gateway keys and the Flower password must be at least this long (and
    # no placeholder): relay_cli/exposure.py.
    min_secret_chars: int = Field(default=16, ge=8)

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @field_validator("key_quotas")
    @classmethod
    def _quotas_by_owner_id(cls, value: dict[str, KeyQuota]) -> dict[str, KeyQuota]:
        for owner in value:
            if not OWNER_ID.match(owner):
                raise ValueError(
                    "RELAY_KEY_QUOTAS is keyed by owner ids (k + 15 hex digits, as GET "
                    "/v1/usage shows a key's), never by the gateway keys themselves"
                )
        return value

    @field_validator("metrics_token", "storage_url", "s3_endpoint_url", mode="before")
    @classmethod
    def _blank_is_no_token(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("owner_secret")
    @classmethod
    def _long_owner_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError(
                "RELAY_OWNER_SECRET must be at least 32 characters: "
                "python -c 'import secrets; print(secrets.token_hex(32))' makes one"
            )
        return value

    def key_quota(self, owner: str) -> KeyQuota:
        """``owner``'s quota: the defaults, with its override's fields on top."""
        base = KeyQuota(rpm=self.key_rpm, tpm=self.key_tpm, daily_tokens=self.key_daily_tokens)
        override = self.key_quotas.get(owner)
        if override is None:
            return base
        return base.model_copy(update=override.model_dump(exclude_unset=True))

    def catalogue_path(self) -> Path | None:
        """The catalogue file to load, or None for the built-in demo catalogue."""
        if self.config is not None:
            return self.config
        default = Path("relay.yaml")
        return default if default.exists() else None

    def key(self, *parts: str) -> str:
        """A Redis key under Relay's prefix."""
        return ":".join((self.key_prefix, *parts))
