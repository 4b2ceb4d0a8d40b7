"""What a call is debited against TPM buckets before the provider reports real usage.

The prompt's part is Relay's one estimate (:mod:`relay_core.context.count`, counted once per
request and carried in the envelope), as the upstream counts it; the output's part is what the
request may produce, or (a provider that counts usage) what such answers were learned to
produce (:mod:`relay_core.limits.costs`). Every call's real usage corrects the buckets
afterwards.
"""

from __future__ import annotations

from relay_core.catalogue.models import ModelConfig, ProviderConfig
from relay_core.limits.costs import CostSample, TokenCost
from relay_core.schemas.chat import ChatCompletionRequest

DEFAULT_OUTPUT_ESTIMATE = 256


def expected_output_tokens(request: ChatCompletionRequest, model: ModelConfig | None) -> int:
    cap = request.output_limit()
    if cap is not None:
        return cap
    if model is not None and model.max_output_tokens is not None:
        return min(model.max_output_tokens, DEFAULT_OUTPUT_ESTIMATE)
    return DEFAULT_OUTPUT_ESTIMATE


def output_cap(request: ChatCompletionRequest, model: ModelConfig | None) -> int:
    """The output the request may produce, over its ``n`` choices."""
    return expected_output_tokens(request, model) * (request.n or 1)


def estimate_request_tokens(
    prompt_tokens: int,
    request: ChatCompletionRequest,
    model: ModelConfig | None,
    *,
    provider: ProviderConfig | None = None,
    cost: TokenCost | None = None,
) -> int:
    """What to reserve against the token limits for a call whose prompt Relay counted as
    ``prompt_tokens``: the prompt as the upstream counts it, plus the whole output cap for a
    provider that reserves it, or the learned output for one that counts usage."""
    cost = cost or TokenCost()
    cap = output_cap(request, model)
    counts_usage = provider is not None and provider.tpm_counting == "usage"
    return cost.prompt(prompt_tokens) + (cost.output(cap) if counts_usage else cap)


def cost_sample(
    provider: ProviderConfig,
    model: ModelConfig,
    request: ChatCompletionRequest,
    prompt_counted: int,
    usage: tuple[int, int],
) -> CostSample:
    """What one answered call (``usage``: its prompt and completion tokens) teaches."""
    return CostSample(
        prompt_counted=prompt_counted,
        output_cap=output_cap(request, model),
        prompt_tokens=usage[0],
        completion_tokens=usage[1],
        reserves=provider.tpm_counting == "reserve",
    )
