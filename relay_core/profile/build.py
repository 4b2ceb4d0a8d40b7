"""``profile_request``: a request's :class:`Profile`, a pure function of the request."""

from __future__ import annotations

from collections.abc import Sequence

from relay_core.context.count import PER_REQUEST, message_chars
from relay_core.errors import InvalidRequest
from relay_core.normalize.jsonmode import wants_json
from relay_core.profile.family import classify
from relay_core.profile.models import Contract, Needs, Priority, Profile, TaskFamily
from relay_core.schemas.chat import ChatCompletionRequest, Message

# A prompt over this many tokens needs a long-context model (past the catalogue's default
# window of 8,192).
LONG_CONTEXT_TOKENS = 8192
IMAGE_PARTS = frozenset({"image_url", "input_image", "image"})
# What an answer of each family runs to when the caller set no cap (tokens).
TYPICAL_OUTPUT = {
    TaskFamily.chat: 300,
    TaskFamily.coding: 800,
    TaskFamily.extraction: 200,
    TaskFamily.reasoning: 600,
    TaskFamily.summarisation: 250,
    TaskFamily.translation: 0,  # as long as the text: see _expected_output
}


def parse_priority(header: str | None) -> Priority:
    """The ``x-relay-priority`` header: ``low``, ``normal`` (the default) or ``high``."""
    if header is None or not header.strip():
        return Priority.normal
    try:
        return Priority(header.strip().lower())
    except ValueError:
        raise InvalidRequest(
            f"x-relay-priority must be one of {', '.join(p.value for p in Priority)}, "
            f"not {header[:32]!r}.",
            param="x-relay-priority",
        ) from None


def profile_request(
    request: ChatCompletionRequest,
    *,
    message_tokens: Sequence[int] | None = None,
    priority: Priority = Priority.normal,
) -> Profile:
    """What ``request`` is: its family, size, needs, determinism and the caller's hints.

    ``message_tokens`` are the messages' token estimates when already counted (the API's);
    without them the prompt is sized from its length alone (four characters a token)."""
    last_user = _last_user(request.messages)
    instruction = _instruction(request.messages, last_user)
    json_out = wants_json(request)
    family = classify(instruction, wants_json=json_out)
    if message_tokens is not None:
        prompt = PER_REQUEST + sum(message_tokens)
    else:
        prompt = PER_REQUEST + sum(message_chars(m) for m in request.messages) // 4
    tools = bool(request.tools)
    return Profile(
        family=family,
        contract=_contract(request, json_out, tools),
        prompt_tokens=prompt,
        expected_output_tokens=_expected_output(request, family, last_user),
        needs=Needs(
            tools=tools,
            json_output=json_out,
            vision=any(_has_image(m) for m in request.messages),
            long_context=prompt > LONG_CONTEXT_TOKENS,
        ),
        deterministic=request.temperature == 0 or request.seed is not None,
        model_type=request.model_type,
        model_scale=request.model_scale,
        priority=priority,
        capped=request.output_limit() is not None,
    )


def _last_user(messages: Sequence[Message]) -> Message | None:
    return next((m for m in reversed(messages) if m.role == "user"), None)


def _instruction(messages: Sequence[Message], last_user: Message | None) -> str:
    """The text the task is read from: the system prompt and the last user message."""
    system = next((m for m in messages if m.role in ("system", "developer")), None)
    parts = [m.text() for m in (system, last_user) if m is not None]
    return "\n".join(parts)


def _contract(request: ChatCompletionRequest, json_out: bool, tools: bool) -> Contract:
    if json_out:
        fmt = request.response_format or {}
        return Contract.schema if fmt.get("type") == "json_schema" else Contract.json
    return Contract.tools if tools else Contract.text


def _expected_output(
    request: ChatCompletionRequest, family: TaskFamily, last_user: Message | None
) -> int:
    cap = request.output_limit()
    if cap is not None:
        return cap
    if family is TaskFamily.translation:  # about as long as the text it translates
        return max(32, len(last_user.text()) // 4) if last_user is not None else 256
    return TYPICAL_OUTPUT[family]


def _has_image(message: Message) -> bool:
    if not isinstance(message.content, list):
        return False
    return any(part.get("type") in IMAGE_PARTS for part in message.content)
