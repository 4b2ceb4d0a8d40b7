"""A request's profile: what kind of work it is, how big, what it needs (docs/routing.md).

Computed once where a request enters (the API, a batch line's first visit), without any
network call, and carried in the envelope so every worker scores and judges it the same way.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class TaskFamily(StrEnum):
    chat = "chat"
    coding = "coding"
    extraction = "extraction"  # pull fields out of text, answer as JSON
    reasoning = "reasoning"  # maths, logic, step-by-step problems
    summarisation = "summarisation"
    translation = "translation"


class Contract(StrEnum):
    """The shape the caller expects the answer in (what :mod:`relay_core.profile.judge`
    checks)."""

    text = "text"
    json = "json"  # response_format json_object
    schema = "schema"  # response_format json_schema
    tools = "tools"  # tools offered: the answer may be a tool call


class Priority(StrEnum):
    """The caller's ``x-relay-priority`` header."""

    low = "low"
    normal = "normal"
    high = "high"


class Needs(BaseModel):
    model_config = ConfigDict(frozen=True)

    tools: bool = False
    json_output: bool = False  # JSON or a JSON schema was asked for
    vision: bool = False  # an image part in the messages
    long_context: bool = False  # the prompt is over LONG_CONTEXT_TOKENS

    def names(self) -> list[str]:
        """The needs that are set, by name (for the route explanation)."""
        return [name for name, on in self.model_dump().items() if on]


class Profile(BaseModel):
    model_config = ConfigDict(frozen=True)

    family: TaskFamily = TaskFamily.chat
    contract: Contract = Contract.text
    prompt_tokens: int = 0
    expected_output_tokens: int = 0
    needs: Needs = Needs()
    deterministic: bool = False  # temperature 0 or a seed: the caller wants repeatable answers
    # The caller's hints, as given.
    model_type: str | None = None
    model_scale: str | None = None
    priority: Priority = Priority.normal
    # The caller set an output cap: a truncated answer (finish_reason "length") is expected.
    capped: bool = False
