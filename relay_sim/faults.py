"""The failures the simulator answers with, independent of wire format.

Each API family renders a :class:`SimFault` in its own error shape and status code (a table
per family in :mod:`relay_sim.families`); the pipeline only raises them.
"""

from __future__ import annotations

from enum import StrEnum

from relay_sim.limits import LimitKind


class FaultKind(StrEnum):
    bad_request = "bad_request"  # 400
    context_length_exceeded = "context_length_exceeded"  # 400: the prompt is over the window
    unauthorized = "unauthorized"  # 401
    not_found = "not_found"  # 404: no such provider or endpoint
    model_not_found = "model_not_found"  # 404
    rate_limited = "rate_limited"  # 429
    server_error = "server_error"  # 500
    unavailable = "unavailable"  # 503


class SimFault(Exception):
    def __init__(
        self,
        kind: FaultKind,
        message: str,
        *,
        param: str | None = None,
        model: str | None = None,
        retry_after_s: float | None = None,
        limit: LimitKind | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.param = param
        self.model = model  # the model a model_not_found fault is about
        self.retry_after_s = retry_after_s
        self.limit = limit
        self.headers = headers if headers is not None else {}

    @classmethod
    def bad_request(cls, message: str, param: str | None = None) -> SimFault:
        return cls(FaultKind.bad_request, message, param=param)

    @classmethod
    def model_not_found(cls, model: str) -> SimFault:
        return cls(
            FaultKind.model_not_found,
            f"The model `{model}` does not exist or you do not have access to it.",
            model=model,
        )

    def __repr__(self) -> str:
        return f"SimFault({self.kind.value}, {self.message!r})"
