"""What the simulator simulates: one :class:`SimProvider` per simulated provider.

A provider's fields are its behaviour (faults, latency), its limits and its models. They are
also the admin API's patch format (``POST /_sim/providers/{name}``), so keep the names stable.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    SecretStr,
)

from relay_core.catalogue.demo import sim_base_url
from relay_core.catalogue.models import ApiFamily, Catalogue, DailyReset, Limits, ProviderConfig
from relay_core.profile.models import TaskFamily

# Which rate-limit headers a provider sends on every answer (``None``: its family's default).
HeaderStyle = Literal["openai", "mistral", "anthropic", "none"]

FAMILY_HEADERS: Mapping[ApiFamily, HeaderStyle] = MappingProxyType(
    {"openai": "openai", "anthropic": "anthropic", "gemini": "none", "ollama": "none"}
)


class SimLimits(BaseModel):
    """Limits the simulator enforces; ``None`` means unlimited."""

    model_config = ConfigDict(extra="forbid")

    rpm: PositiveInt | None = None
    tpm: PositiveInt | None = None
    rpd: PositiveInt | None = None
    tpd: PositiveInt | None = None
    concurrency: PositiveInt | None = None


def _limit_fields(limits: Limits | None) -> dict[str, int | None]:
    if limits is None:
        return {}
    return {
        "rpm": limits.rpm,
        "tpm": limits.tpm,
        "rpd": limits.rpd,
        "tpd": limits.tpd,
        "concurrency": limits.concurrency,
    }


class SimModel(SimLimits):
    """One model of a simulated provider, with its own limits (on top of the provider's)."""

    id: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)
    embeddings: bool = False
    # Its vectors' length (relay_sim/vectors.py; None: 16). Asked for fewer (``dimensions``,
    # ``outputDimensionality``), it answers its own vector cut short; for more, a 400.
    dimensions: PositiveInt | None = None
    # Answer 400 context_length_exceeded (OpenAI's words and figures) when the prompt, as this
    # provider counts it, plus max_tokens is over this many tokens. None: no window.
    context_window: PositiveInt | None = None


Share = Annotated[float, Field(ge=0.0, le=1.0)]


class SimQuality(BaseModel):
    """How good one provider's answers are for one task family (``relay_sim/quality.py``):
    the share of answers that are empty, in prose where JSON was asked, or wrong (well
    formed, but marked ``[sim:wrong]``), and the extra time they take."""

    model_config = ConfigDict(extra="forbid")

    empty: Share = 0.0
    invalid_json: Share = 0.0
    wrong: Share = 0.0
    latency_ms: NonNegativeFloat = 0.0


# A quality profile's key: a task family (relay_core/profile), or "*" for every other one.
QualityKey = TaskFamily | Literal["*"]

Unsupported = Literal["json_schema", "null_content"]
TpmCounting = Literal["reserve", "usage"]


class SimProvider(SimLimits):
    """One simulated provider: its wire format, models, limits and behaviour."""

    name: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    api: ApiFamily
    models: list[SimModel] = Field(min_length=1)
    # The key clients must send; None accepts any key (or none).
    api_key: SecretStr | None = None

    # Limits are counted over a sliding window of ``window_s`` seconds, each scaled to it:
    # with window_s=1 the budget is rpm/60 requests (and tpm/60 tokens) per second.
    window_s: PositiveFloat = 60.0
    daily_reset: DailyReset = "00:00 UTC"
    headers: HeaderStyle | None = None
    retry_after_ms: bool = False  # also send ``retry-after-ms`` on 429 (OpenAI's SDK reads it)
    # Send ``retry-after`` (seconds) on 429 where the family does (Gemini never does). Off: a
    # 429 says when to come back only through its rate-limit reset headers, like providers
    # that send ``x-ratelimit-reset-*`` alone.
    retry_after: bool = True

    # Faults
    outage: bool = False  # 503 on every call
    hang: bool = False  # accept the request, never answer
    garbage: bool = False  # 200 whose body is not the wire format
    truncate: bool = False  # 200 whose body stops half-way: the connection drops
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0)  # share of admitted calls that 500
    flap_s: PositiveFloat | None = None  # healthy for flap_s, then down for flap_s, and so on
    # A careless provider that quotes the key the caller sent: in every error message, one
    # character of it JSON-escaped (``\u00XX``, ``/`` as ``\/``); in every answer's text.
    echo_key_in_errors: bool = False
    echo_key_in_answers: bool = False

    # Timing (relay_sim/timing.py): the answer starts after latency_ms ± jitter_ms (uniform)
    # plus a lognormal draw of median latency_median_ms and shape latency_sigma (0: exactly the
    # median), plus straggler_ms for a share straggler_rate of answers; then it takes
    # ms_per_output_token per completion token (a stream spreads that over its chunks). Stream
    # chunks of ``chunk_chars`` characters follow each other every chunk_delay_ms.
    latency_ms: NonNegativeFloat = 0.0
    jitter_ms: NonNegativeFloat = 0.0
    latency_median_ms: NonNegativeFloat = 0.0
    latency_sigma: NonNegativeFloat = 0.0
    straggler_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    straggler_ms: NonNegativeFloat = 0.0
    ms_per_output_token: NonNegativeFloat = 0.0
    chunk_delay_ms: NonNegativeFloat = 0.0
    chunk_chars: PositiveInt = 16

    # How TPM/TPD count a request: ``reserve`` charges prompt + max_tokens (16 if absent) at
    # admission (Cerebras, Groq); ``usage`` charges the prompt at admission and the answer's
    # actual completion tokens when it is sent (OpenAI-style usage accounting).
    tpm_counting: TpmCounting = "reserve"
    # Hidden limits: enforce this share of rpm/tpm/rpd/tpd (model limits too) while headers
    # and 429 messages state the published figures, as a wrong catalogue entry looks.
    hidden_factor: float = Field(default=1.0, gt=0.0, le=1.0)

    # Upstream quirks (off by default)
    # A "denser tokenizer": tokens per character are this many times the default (one per
    # four characters): 3.0 counts more tokens per character than Relay's estimate does.
    token_density: PositiveFloat = 1.0
    # Off: a stream never carries a usage chunk, even with stream_options.include_usage (as
    # several OpenAI-compatible servers do).
    stream_usage: bool = True
    # A server that answers HTTP 500 to valid OpenAI requests it cannot handle, as llama.cpp's
    # does (with the Python error as the message): ``json_schema`` (a ``response_format`` of
    # type json_schema, LangChain's structured output), ``null_content`` (an assistant
    # message whose content is null beside its tool_calls, every agent loop).
    fails_on: list[Unsupported] = Field(default_factory=list)
    # Answer a *streamed* prompt over the model's context_window with a 200 and an empty
    # stream (llama.cpp's server), not the 400 context_length_exceeded it sends otherwise.
    empty_stream_over_window: bool = False
    # Per task family (the request's, read as Relay reads it), how good the answers are: see
    # SimQuality. A family without an entry takes "*"'s; neither: every answer is good.
    quality: dict[QualityKey, SimQuality] = Field(default_factory=dict)
    # OpenAI-compatible servers that implement less than OpenAI does (llama.cpp's server):
    # read only ``max_tokens`` (``max_completion_tokens`` is ignored: the answer runs on);
    # answer one choice whatever ``n`` asks; repeat the tool call's ``id``, ``type`` and
    # ``name`` on every streamed tool-call delta; quote the server's own file paths (a Python
    # traceback's) in the message of every 5xx.
    ignores_max_completion_tokens: bool = False
    ignores_n: bool = False
    repeats_tool_call_ids: bool = False
    traceback_in_errors: bool = False
    # A model that answers prose where JSON was asked (docs/answers.md): the first
    # ``invalid_json_first`` JSON-asked answers of this provider, and a share
    # ``invalid_json_rate`` of the rest, are prose around the text instead of the document.
    invalid_json_first: int = Field(default=0, ge=0)
    invalid_json_rate: float = Field(default=0.0, ge=0.0, le=1.0)

    def header_style(self) -> HeaderStyle:
        return self.headers if self.headers is not None else FAMILY_HEADERS[self.api]

    def expected_key(self) -> str | None:
        return None if self.api_key is None else self.api_key.get_secret_value()

    @classmethod
    def from_catalogue(cls, provider: ProviderConfig, **overrides: object) -> SimProvider:
        """Simulate a catalogue provider: its family, models and published limits.

        The expected key is the one its ``api_key_env`` holds now, if set (so Relay, reading
        the same variable, is let in and anything else gets a 401).
        """
        fields: dict[str, object] = {
            "name": provider.name,
            "api": provider.api,
            "api_key": provider.api_key(),
            "daily_reset": provider.limits.daily_reset,
            "tpm_counting": provider.tpm_counting,
            "models": [
                {
                    "id": m.id,
                    "aliases": list(m.aliases),
                    "embeddings": m.embeddings,
                    "dimensions": m.dimensions,
                    **_limit_fields(m.limits),
                }
                for m in provider.models
            ],
            **_limit_fields(provider.limits),
        }
        return cls.model_validate({**fields, **overrides})


class SimConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    providers: list[SimProvider] = Field(min_length=1)
    # Seeds the random choices (error_rate, jitter) so a run can be replayed.
    seed: int | None = None

    @classmethod
    def from_catalogue(cls, catalogue: Catalogue, **overrides: object) -> SimConfig:
        """One simulated provider per catalogue provider; ``overrides`` apply to each of them
        (e.g. ``window_s=1``, ``latency_ms=5``)."""
        return cls(
            providers=[SimProvider.from_catalogue(p, **overrides) for p in catalogue.providers]
        )

    def provider(self, name: str) -> SimProvider | None:
        return next((p for p in self.providers if p.name == name), None)


__all__ = [
    "HeaderStyle",
    "SimConfig",
    "SimLimits",
    "SimModel",
    "SimProvider",
    "SimQuality",
    "TpmCounting",
    "sim_base_url",
]
