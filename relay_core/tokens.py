"""What a call is debited against TPM buckets before the provider reports real usage.

The prompt's part is Relay's one estimate (:mod:`relay_core.context.count`, counted once per
request and carried in the envelope); the output's part is what the request may produce.
Every call's real usage corrects the buckets afterwards.
"""

from __future__ import annotations

from relay_core.catalogue.models import ModelConfig
from relay_core.schemas.chat import ChatCompletionRequest

DEFAULT_OUTPUT_ESTIMATE = 256


def expected_output_tokens(request: ChatCompletionRequest, model: ModelConfig | None) -> int:
    cap = request.output_limit()
    if cap is not None:
        return cap
    if model is not None and model.max_output_tokens is not None:
        return min(model.max_output_tokens, DEFAULT_OUTPUT_ESTIMATE)
    return DEFAULT_OUTPUT_ESTIMATE


def estimate_request_tokens(
    prompt_tokens: int, request: ChatCompletionRequest, model: ModelConfig | None
) -> int:
    """``prompt_tokens`` plus the output the request may produce (times ``n`` choices)."""
    return prompt_tokens + expected_output_tokens(request, model) * (request.n or 1)
