"""Token estimates, for debiting TPM buckets before the provider reports real usage.

Deliberately cheap (characters / 4, the usual rule of thumb for English with BPE tokenizers):
the estimate only has to be close, because every call's real usage corrects the buckets.
"""

from __future__ import annotations

from relay_core.catalogue.models import ModelConfig
from relay_core.schemas.chat import ChatCompletionRequest, Message

CHARS_PER_TOKEN = 4
PER_MESSAGE_OVERHEAD = 4
DEFAULT_OUTPUT_ESTIMATE = 256


def estimate_text_tokens(text: str) -> int:
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def estimate_message_tokens(message: Message) -> int:
    n = PER_MESSAGE_OVERHEAD + estimate_text_tokens(message.text())
    for call in message.tool_calls or ():
        n += estimate_text_tokens(call.function.name + call.function.arguments)
    return n


def estimate_prompt_tokens(request: ChatCompletionRequest) -> int:
    return sum(estimate_message_tokens(m) for m in request.messages)


def expected_output_tokens(request: ChatCompletionRequest, model: ModelConfig | None) -> int:
    cap = request.output_limit()
    if cap is not None:
        return cap
    if model is not None and model.max_output_tokens is not None:
        return min(model.max_output_tokens, DEFAULT_OUTPUT_ESTIMATE)
    return DEFAULT_OUTPUT_ESTIMATE


def estimate_request_tokens(request: ChatCompletionRequest, model: ModelConfig | None) -> int:
    """Prompt tokens plus the output the request may produce (times ``n`` choices)."""
    return estimate_prompt_tokens(request) + expected_output_tokens(request, model) * (
        request.n or 1
    )
