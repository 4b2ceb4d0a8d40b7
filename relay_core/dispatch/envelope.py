"""What travels on the queues: one request, its ranked candidates, and where to answer.

The envelope carries *references* (provider names, model ids), never secrets: a worker looks the
provider's key up in its own environment. The candidate list travels with the task so any
worker can re-route without asking the API.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, Discriminator, Field, Tag

from relay_core.answers.repair import AnswerCheck, Repair
from relay_core.errors import ErrorInfo
from relay_core.profile.models import Profile
from relay_core.schemas.chat import ChatCompletion, ChatCompletionRequest, Usage
from relay_core.schemas.embeddings import EmbeddingRequest, EmbeddingResponse


class Kind(StrEnum):
    interactive = "interactive"  # a client waits: give up when every candidate is exhausted
    batch = "batch"  # nobody waits: keep retrying with backoff until the deadline


class Candidate(BaseModel):
    provider: str
    model: str  # the provider's own model id

    @property
    def key(self) -> str:
        return f"{self.provider}/{self.model}"


class RouteFlags(BaseModel):
    """Per-request features, decided where the request entered, for the code that provides
    them: ``hedge`` (send a second copy to another provider after a while: the setting, the
    ``x-relay-hedge`` header or a policy; relay_core/dispatch/hedge.py), ``cache`` (the
    exact-answer cache may serve and keep this request: a policy)."""

    hedge: bool = False
    cache: bool = False


class StepRef(BaseModel):
    """The workflow run step a chat task answers (relay_core/workflow): when its visit is
    over, the worker records the answer as the run's visit ``index`` and sends the next
    step, instead of publishing a reply."""

    run: str
    step: str  # the step's name
    index: int
    started_at: float


def _request_kind(value: Any) -> str:
    """Which request an envelope carries: an embeddings body has ``input``, a chat one
    ``messages`` (one validation, no guessing between the two)."""
    if isinstance(value, dict):
        return "embeddings" if "input" in value and "messages" not in value else "chat"
    return "embeddings" if isinstance(value, EmbeddingRequest) else "chat"


AnyRequest = Annotated[
    Annotated[ChatCompletionRequest, Tag("chat")] | Annotated[EmbeddingRequest, Tag("embeddings")],
    Discriminator(_request_kind),
]


class Envelope(BaseModel):
    id: str
    # Validated once where it enters (the API, or the feeder for a batch line); a worker
    # decodes it with the envelope and never re-validates it per visit. A chat request, or
    # an embeddings one (relay_core/dispatch/embed.py).
    request: AnyRequest
    candidates: list[Candidate] = Field(min_length=1)
    index: int = 0
    attempts: int = 0
    kind: Kind = Kind.interactive
    deadline: float
    reply_to: str | None = None
    enqueued_at: float = Field(default_factory=time.time)
    # Why earlier attempts failed, most recent last (bounded), for the final error.
    failures: list[ErrorInfo] = Field(default_factory=list)
    # Batch bookkeeping (set for batch lines only).
    batch_id: str | None = None
    custom_id: str | None = None
    owner: str | None = None  # gateway key id (a hash), for usage and isolation
    # Each message's token estimate, counted once (by the API, or a line's first visit) and
    # reused by every visit and candidate (docs/context.md).
    message_tokens: list[int] | None = None
    # Relay's estimate times this is what an upstream counted, after it answered
    # context_length_exceeded (set once: the request is trimmed and retried once).
    token_scale: float | None = None
    # What the request is (relay_core/profile), computed where it entered; None for a batch
    # line, profiled by the worker on its visit.
    profile: Profile | None = None
    # What the routing policies turned on for this request (relay_core/policy).
    flags: RouteFlags = Field(default_factory=RouteFlags)
    # Answers checked against response_format (docs/answers.md): the pending re-ask for the
    # current candidate, and every check so far (the route audit).
    repair: Repair | None = None
    checks: list[AnswerCheck] = Field(default_factory=list)
    # How many times the API published a stream again after its worker died before the first
    # chunk: each time under a stream key of its own (``relay_core.dispatch.streaming``), so
    # a worker thought dead that wakes up writes where nobody reads.
    republished: int = 0
    workflow: StepRef | None = None  # a workflow step's call (relay_core/workflow)

    @property
    def chat(self) -> ChatCompletionRequest:
        """The chat request, for code that only chat requests reach (an embeddings
        envelope leaves the executor before: relay_core/dispatch/embed.py)."""
        if not isinstance(self.request, ChatCompletionRequest):
            raise TypeError(f"envelope {self.id} carries an embeddings request, not a chat one")
        return self.request

    @property
    def current(self) -> Candidate:
        return self.candidates[self.index % len(self.candidates)]


def queue_name(prefix: str, provider: str) -> str:
    """The Celery queue serving one provider."""
    return f"{prefix}.{provider}"


class Reply(BaseModel):
    """A worker's final word on one envelope, published to ``reply_to``: a whole answer
    (``completion``), the end of a stream whose chunks went by its stream key (``usage``,
    ``cancelled`` when the client left), or why it failed (``error``)."""

    id: str
    ok: bool
    completion: ChatCompletion | None = None
    embedding: EmbeddingResponse | None = None  # an embeddings request's answer
    usage: Usage | None = None  # a stream's
    cancelled: bool = False
    error: ErrorInfo | None = None
    provider: str | None = None
    model: str | None = None
    attempts: int = 0
    queue_wait_s: float = 0.0
    upstream_s: float = 0.0
    # Why the attempts before the last failed, oldest first (bounded): the route audit.
    failures: list[ErrorInfo] = Field(default_factory=list)
    checks: list[AnswerCheck] = Field(default_factory=list)  # the answers checked, in order
    cached: bool = False  # answered from the exact cache (docs/answers.md): no upstream call
    hedged: bool = False  # the answer is a hedge's (relay_core/dispatch/hedge.py)
