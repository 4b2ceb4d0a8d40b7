"""Relay's one exception tree.

Every failure Relay can report is one of these. Each class carries the HTTP status the API
answers with, the OpenAI error ``type`` and ``code``, and whether another attempt (on another
provider, or later) may succeed. The API renders them in one place; workers move them across
processes as :class:`ErrorInfo`.

    RelayError
    ├── ClientError                      the caller must change something; never retried
    │   ├── InvalidRequest               400 invalid_request_error (names the ``param``)
    │   │   └── PolicyRefused            400 policy_refused: the routing policies leave no
    │   │                                candidate for the request
    │   ├── AuthenticationError          401 gateway key missing or wrong
    │   ├── PermissionDenied             403
    │   ├── NotFound                     404 (files, batches)
    │   │   └── ModelNotFound            404 model_not_found
    │   ├── PayloadTooLarge              413
    │   ├── RangeNotSatisfiable          416 a download's Range lies past the file's end
    │   ├── TooManyStreams               429 the key has RELAY_MAX_STREAMS_PER_KEY streams open
    │   └── KeyQuotaExceeded             429 rate_limit_exceeded: the gateway key is over its
    │       ├── KeyRpmExceeded               quota (``retry_after`` set); the code names the
    │       ├── KeyTpmExceeded               quota: key_quota_rpm, key_quota_tpm,
    │       └── KeyDailyTokensExceeded       key_quota_daily_tokens
    ├── UpstreamError                    one provider failed this attempt (``provider`` set)
    │   ├── UpstreamAuthError            401/403 from the provider: the key is bad; try others
    │   ├── UpstreamModelNotFound        404 from the provider
    │   ├── UpstreamQuotaExhausted       402: credits or daily allowance gone
    │   ├── UpstreamBadRequest           400/422: the provider refused the request itself
    │   │   ├── UpstreamContextTooLong   the prompt is over its window (code and param kept)
    │   │   └── UpstreamRequestFailed    a 5xx the request caused: try others, never blame
    │   ├── RateLimited                  429 (``retry_after`` seconds when the provider said)
    │   ├── UpstreamTimeout              no answer in time
    │   ├── UpstreamUnavailable          5xx, connection refused or reset
    │   ├── UpstreamMalformed            an answer that is not the provider's wire format
    │   │   ├── UpstreamEmptyStream      a 200 stream without a single choice
    │   │   └── UpstreamUnusableAnswer   a 200 whose answer is not what was asked (empty,
    │   │       │                        cut short, not JSON, tool arguments that do not parse)
    │   │       └── UpstreamInvalidAnswer  not the JSON its response_format asked, after repairs
    │   └── CircuitOpen                  the breaker keeps traffic off this provider/model
    └── ServiceError                     Relay itself cannot serve now
        ├── CapacityExhausted            429 every candidate is out of tokens (``retry_after``)
        ├── NoProviderAvailable          503 every candidate failed, for mixed reasons
        ├── ProvidersDown                503 upstream_unavailable: every candidate is down
        │   └── BreakersOpen             503 circuit_open (``retry_after``: the cool-down)
        ├── ProviderKeysRefused          503 every candidate's provider refused Relay's key
        ├── NoValidAnswer                502 every candidate's answer failed its response_format
        ├── RedisUnavailable             503 redis_unavailable: Relay's Redis does not answer
        └── GatewayTimeout               504 no result before the request deadline
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel


class ErrorInfo(BaseModel):
    """A :class:`RelayError` as plain data, so it can cross a queue or a Redis channel."""

    kind: str
    message: str
    param: str | None = None
    provider: str | None = None
    model: str | None = None
    upstream_status: int | None = None
    upstream_body: str | None = None
    retry_after: float | None = None

    @property
    def error_class(self) -> type[RelayError]:
        """The class this error was raised as (:class:`RelayError` for a kind this build
        does not know, say from a newer worker)."""
        return _BY_NAME.get(self.kind, RelayError)

    def is_a(self, *classes: type[RelayError]) -> bool:
        """Whether the error is one of ``classes`` or a subclass: decisions walk the
        hierarchy, never compare names (a ``ContextLengthExceeded`` *is* an
        ``InvalidRequest``)."""
        return issubclass(self.error_class, classes)


class RelayError(Exception):
    status_code: ClassVar[int] = 500
    error_type: ClassVar[str] = "server_error"
    code: ClassVar[str | None] = None
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        upstream_status: int | None = None,
        upstream_body: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.provider = provider
        self.model = model
        self.upstream_status = upstream_status
        self.upstream_body = upstream_body
        self.retry_after = retry_after

    def to_info(self) -> ErrorInfo:
        return ErrorInfo(
            kind=type(self).__name__,
            message=self.message,
            param=self.param,
            provider=self.provider,
            model=self.model,
            upstream_status=self.upstream_status,
            upstream_body=self.upstream_body,
            retry_after=self.retry_after,
        )

    @staticmethod
    def from_info(info: ErrorInfo) -> RelayError:
        return info.error_class(
            info.message,
            param=info.param,
            provider=info.provider,
            model=info.model,
            upstream_status=info.upstream_status,
            upstream_body=info.upstream_body,
            retry_after=info.retry_after,
        )

    def body(self) -> dict[str, Any]:
        """The OpenAI error object: ``{"error": {"message", "type", "param", "code"}}``."""
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, provider={self.provider!r})"


# ---- the caller's fault -------------------------------------------------------------------


class ClientError(RelayError):
    status_code = 400
    error_type = "invalid_request_error"


class InvalidRequest(ClientError):
    code = "invalid_request"


class PolicyRefused(InvalidRequest):
    """The catalogue's routing policies exclude (or do not require) every candidate."""

    code = "policy_refused"


class ContextLengthExceeded(InvalidRequest):
    """The conversation cannot be fitted to the model's context window (OpenAI's code)."""

    code = "context_length_exceeded"


class AuthenticationError(ClientError):
    status_code = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(ClientError):
    status_code = 403
    error_type = "permission_error"
    code = "permission_denied"


class NotFound(ClientError):
    status_code = 404
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class PayloadTooLarge(ClientError):
    status_code = 413
    code = "payload_too_large"


class RangeNotSatisfiable(ClientError):
    """No range of a download's ``Range`` header starts inside the file (``size`` bytes:
    the 416 names it in ``Content-Range: bytes */{size}``)."""

    status_code = 416
    code = "range_not_satisfiable"

    def __init__(self, message: str, *, size: int = 0, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.size = size


class TooManyStreams(ClientError):
    """The gateway key already has its share of open streams (``retry_after`` set)."""

    status_code = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"


class KeyQuotaExceeded(ClientError):
    """The gateway key used its quota (RELAY_KEY_RPM, _TPM, _DAILY_TOKENS or its override):
    other keys are served; ``retry_after`` says when this one may be again."""

    status_code = 429
    error_type = "rate_limit_exceeded"
    code = "key_quota"


class KeyRpmExceeded(KeyQuotaExceeded):
    code = "key_quota_rpm"


class KeyTpmExceeded(KeyQuotaExceeded):
    code = "key_quota_tpm"


class KeyDailyTokensExceeded(KeyQuotaExceeded):
    code = "key_quota_daily_tokens"


# ---- one provider failed one attempt --------------------------------------------------------


class UpstreamError(RelayError):
    status_code = 502
    error_type = "upstream_error"
    code = "upstream_error"
    retryable = True


class UpstreamAuthError(UpstreamError):
    code = "upstream_auth_failed"


class UpstreamModelNotFound(UpstreamError):
    code = "upstream_model_not_found"


class UpstreamQuotaExhausted(UpstreamError):
    status_code = 429
    error_type = "insufficient_quota"
    code = "insufficient_quota"


class UpstreamBadRequest(UpstreamError):
    status_code = 400
    error_type = "invalid_request_error"
    code = "upstream_rejected_request"
    retryable = False


class UpstreamContextTooLong(UpstreamBadRequest):
    """The provider counted the prompt over its context window (its
    ``context_length_exceeded``): Relay trims with the provider's own figure and retries once."""

    code = "context_length_exceeded"


class UpstreamRequestFailed(UpstreamBadRequest):
    """The provider failed on this request itself, though it answered with a 5xx: its body is
    a validation error, or the same request failed the same way twice while the provider
    serves others, or it streamed nothing for a prompt near its window. Another provider may
    take the request (so it is retryable), and it never counts against this one's breaker."""

    status_code = 422
    code = "upstream_request_failed"
    retryable = True


class RateLimited(UpstreamError):
    status_code = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"


class UpstreamTimeout(UpstreamError):
    status_code = 504
    code = "upstream_timeout"


class UpstreamUnavailable(UpstreamError):
    code = "upstream_unavailable"


class UpstreamMalformed(UpstreamError):
    code = "upstream_malformed_response"


class UpstreamEmptyStream(UpstreamMalformed):
    """A 200 stream that carried no choice at all (servers answer so for a prompt over
    their window: near the window Relay takes it as the request's fault)."""

    code = "upstream_empty_stream"


class UpstreamUnusableAnswer(UpstreamMalformed):
    """The provider answered, but not usably: an empty answer, one cut short the caller did
    not ask to cap, prose where JSON was asked, or a tool call whose arguments do not parse
    (relay_core/profile/judge.py). It counts against the candidate's learned success and the
    request fails over (docs/routing.md); the breaker does not count it."""

    code = "upstream_unusable_answer"


class UpstreamInvalidAnswer(UpstreamUnusableAnswer):
    """A 200 whose answer is not the JSON its ``response_format`` asked for, still after the
    repairs (docs/answers.md): the provider is up (its breaker counts a success), this
    candidate just cannot give this answer, so the request tries the next."""

    code = "upstream_invalid_answer"


class CircuitOpen(UpstreamError):
    status_code = 503
    code = "circuit_open"


# ---- Relay cannot serve now ----------------------------------------------------------------


class ServiceError(RelayError):
    status_code = 503
    error_type = "server_error"


class CapacityExhausted(ServiceError):
    status_code = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"
    retryable = True


class NoProviderAvailable(ServiceError):
    code = "no_provider_available"
    retryable = True


class ProvidersDown(ServiceError):
    """Every candidate is down (5xx, unreachable, timing out, or kept off by its breaker)."""

    code = "upstream_unavailable"
    retryable = True


class BreakersOpen(ProvidersDown):
    """Every candidate's breaker is open: ``retry_after`` is the soonest cool-down's end."""

    code = "circuit_open"


class ProviderKeysRefused(ServiceError):
    """Every candidate's provider refused the API key Relay holds for it: the operator must
    change it. Names the providers, never the key."""

    code = "upstream_auth_failed"


class NoValidAnswer(ServiceError):
    status_code = 502
    code = "no_valid_answer"
    retryable = True


class RedisUnavailable(ServiceError):
    """Relay's Redis (queues, limits, batch and file records) does not answer: the API
    translates Redis's connection and timeout errors into this (``retry_after`` set)."""

    code = "redis_unavailable"
    retryable = True


class GatewayTimeout(ServiceError):
    status_code = 504
    code = "timeout"


INTERNAL_MESSAGE = "Relay hit an internal error; it has been logged."


class InternalError(RelayError):
    """Relay itself failed (a bug, logged with its traceback): never an upstream's fault."""

    code = "internal_error"


def _subclasses(cls: type[RelayError]) -> list[type[RelayError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_subclasses(sub))
    return found


_BY_NAME: dict[str, type[RelayError]] = {c.__name__: c for c in _subclasses(RelayError)}
