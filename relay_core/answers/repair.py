"""Repair: an answer that is not the JSON ``response_format`` asked for is asked for again, on
the same candidate, with the validator's words; after ``RELAY_REPAIR_MAX_ATTEMPTS`` such
re-asks the request fails over to the next candidate (docs/answers.md).

The re-ask travels in the envelope as a :class:`Repair`: the two messages added to the
conversation (the invalid answer, and what is wrong with it) for *that* candidate only; the
next candidate gets the client's conversation as it was. Every check is kept in the envelope's
audit (:class:`AnswerCheck`), which the reply carries to the client (``x-relay-answer-checks``)
and into a batch line's one output record.
"""

from __future__ import annotations

from enum import StrEnum

import orjson
from pydantic import BaseModel

from relay_core.answers.validate import ValidationResult, schema_of
from relay_core.context.count import count_message
from relay_core.schemas.chat import ChatCompletion, ChatCompletionRequest, Message


class CheckAction(StrEnum):
    delivered = "delivered"  # valid: this answer went to the client
    repair = "repair"  # invalid: asked again on the same candidate
    failover = "failover"  # invalid, repairs spent: the next candidate


class AnswerCheck(BaseModel):
    """One answer checked against its ``response_format``: the route audit's entry."""

    provider: str
    model: str
    attempt: int  # the request's upstream attempt this answer came from (1-based)
    valid: bool
    action: CheckAction
    error: str | None = None

    def header(self) -> str:
        """``provider/model:attempt:action`` (``x-relay-answer-checks``, comma-separated)."""
        return f"{self.provider}/{self.model}:{self.attempt}:{self.action.value}"


def check_entry(
    provider: str, model: str, attempt: int, check: ValidationResult, action: CheckAction
) -> AnswerCheck:
    return AnswerCheck(
        provider=provider,
        model=model,
        attempt=attempt,
        valid=check.ok,
        action=action,
        error=check.error,
    )


class Repair(BaseModel):
    """The messages a candidate's next attempt adds to the conversation, and how many
    re-asks it has had."""

    candidate: str  # Candidate.key
    messages: list[Message]
    tokens: list[int]  # each message's estimate, as the envelope's message_tokens
    count: int = 1

    def applied(
        self, request: ChatCompletionRequest, tokens: list[int] | None
    ) -> tuple[ChatCompletionRequest, list[int] | None]:
        asked = request.model_copy(update={"messages": [*request.messages, *self.messages]})
        return asked, None if tokens is None else [*tokens, *self.tokens]


def repair_prompt(check: ValidationResult, request: ChatCompletionRequest) -> str:
    schema = schema_of(request.response_format)
    wanted = (
        "one JSON document valid against this JSON Schema:\n" + orjson.dumps(schema).decode()
        if schema is not None
        else "one JSON object"
    )
    return (
        f"Your previous answer cannot be used: {check.error}.\n"
        f"Answer again with {wanted}\n"
        "Reply with the JSON only: no prose, no code fence."
    )


def next_repair(
    previous: Repair | None,
    candidate: str,
    body: ChatCompletion,
    check: ValidationResult,
    request: ChatCompletionRequest,
) -> Repair:
    """The re-ask after ``body`` failed ``check``: the invalid answer and what is wrong with
    it (only the latest pair: each re-ask starts from the client's conversation)."""
    index = check.choice or 0
    answer = next((c.message.content for c in body.choices if c.index == index), None)
    messages = [
        Message(role="assistant", content=answer or ""),
        Message(role="user", content=repair_prompt(check, request)),
    ]
    count = previous.count + 1 if previous is not None and previous.candidate == candidate else 1
    return Repair(
        candidate=candidate,
        messages=messages,
        tokens=[count_message(m) for m in messages],
        count=count,
    )


def repairs_of(repair: Repair | None, candidate: str) -> int:
    """How many re-asks ``candidate`` has had for this request."""
    return repair.count if repair is not None and repair.candidate == candidate else 0
