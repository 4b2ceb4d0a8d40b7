"""What the simulator answers, whatever the wire format: deterministic, so a test can check
that each request got *its own* answer.

The assistant text is ``"sim:{provider}/{model}: " + <last user message>``, cut to
``max_tokens * 4`` characters (then ``finish`` is ``length``). Token counts are characters / 4,
rounded up. A request that offers tools and whose last user message says ``[call:NAME]`` gets a
call to tool ``NAME`` with arguments ``{}``. The last user message may also carry fault
triggers: ``[sim:400]``, ``[sim:429]``, ``[sim:500]``, ``[sim:hang]``, ``[sim:garbage]``,
``[sim:truncate]``, ``[sim:slow=MS]``. A request that asked for JSON gets its text as a JSON
document (:mod:`relay_sim.json_answer`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from relay_sim.config import TpmCounting
from relay_sim.json_answer import json_text

DEFAULT_MAX_TOKENS = 16  # what a request without an output cap costs against TPM

_TRIGGER = re.compile(r"\[sim:(400|429|500|hang|garbage|truncate|slow=(\d+))\]")
_TOOL_CALL = re.compile(r"\[call:([A-Za-z0-9_.\-]+)\]")


def estimate_tokens(chars: int, density: float = 1.0) -> int:
    """Characters / 4, rounded up; times ``density`` for a denser tokenizer."""
    if density == 1.0:
        return (chars + 3) // 4
    return -int(-chars * density // 4)


@dataclass(frozen=True, slots=True)
class Triggers:
    bad_request: bool = False
    rate_limit: bool = False
    server_error: bool = False
    hang: bool = False
    garbage: bool = False
    truncate: bool = False
    slow_ms: int = 0

    @classmethod
    def parse(cls, text: str) -> Triggers:
        if "[sim:" not in text:
            return NO_TRIGGERS
        found = {m.group(1) for m in _TRIGGER.finditer(text)}
        slow = [int(m.group(2)) for m in _TRIGGER.finditer(text) if m.group(2)]
        return cls(
            bad_request="400" in found,
            rate_limit="429" in found,
            server_error="500" in found,
            hang="hang" in found,
            garbage="garbage" in found,
            truncate="truncate" in found,
            slow_ms=max(slow, default=0),
        )


NO_TRIGGERS = Triggers()


@dataclass(slots=True)
class Call:
    """One request, read from any family's wire format."""

    model: str  # as the client named it
    text: str  # the last user message's text (or the first embeddings input)
    prompt_chars: int  # every message's text, system included
    max_tokens: int | None = None
    stream: bool = False
    include_usage: bool = False  # OpenAI's stream_options.include_usage
    tools: tuple[str, ...] = ()
    embed_inputs: tuple[str, ...] | None = None  # set for an embeddings request
    # The vectors' length asked for (None: the model's own), then the model's own length and
    # whether the client asked for base64 (OpenAI's encoding_format).
    embed_dimensions: int | None = None
    embed_native: int = 16
    embed_base64: bool = False
    embed_batch: bool = False  # Gemini's batchEmbedContents (a list back, even of one)
    # Request features a quirky server may fail on (``SimProvider.fails_on``).
    features: frozenset[str] = frozenset()
    over_window: bool = False  # streamed over the window, answered with an empty stream
    # OpenAI's ``max_tokens`` alone (``max_tokens`` above is the cap whichever spelling set it).
    max_tokens_param: int | None = None
    n: int = 1  # choices asked for (OpenAI's ``n``)
    repeat_tool_ids: bool = False  # every streamed tool-call delta repeats id, type and name
    # The request asked for JSON (relay_sim/json_answer.py), against this schema if any; a
    # provider with ``invalid_json_*`` answers some of them in prose (``prose`` set).
    json_mode: bool = False
    json_schema: dict[str, Any] | None = None
    prose: bool = False

    def cost(self) -> int:
        """Tokens this request reserves against TPM/TPD: prompt + requested output."""
        output = 0 if self.embed_inputs is not None else self.max_tokens or DEFAULT_MAX_TOKENS
        return estimate_tokens(self.prompt_chars) + output

    def charge(self, counting: TpmCounting, density: float = 1.0) -> int:
        """Tokens charged at admission: the reservation (``reserve``), or only the prompt as
        the provider counts it (``usage``: the completion is charged once it is known)."""
        if counting == "usage":
            return estimate_tokens(self.prompt_chars, density)
        return self.cost()


class Finish(StrEnum):
    stop = "stop"
    length = "length"
    tool_calls = "tool_calls"


@dataclass(frozen=True, slots=True)
class Answer:
    model: str  # the model's canonical id
    content: str
    tool: str | None
    finish: Finish
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def pieces(self, size: int) -> list[str]:
        """The content cut into stream chunks of ``size`` characters (at least one chunk)."""
        text = self.content
        return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def make_answer(
    provider: str, model: str, call: Call, echo: str = "", density: float = 1.0
) -> Answer:
    """The answer to ``call``; ``echo`` (a key the provider quotes back) ends its text;
    ``density`` scales the tokens counted per character (a denser tokenizer)."""
    prompt = estimate_tokens(call.prompt_chars, density)
    if call.embed_inputs is not None:
        return Answer(model, "", None, Finish.stop, prompt, 0)
    if call.tools:
        wanted = _TOOL_CALL.search(call.text)
        if wanted is not None:
            name = wanted.group(1)
            return Answer(
                model, "", name, Finish.tool_calls, prompt, estimate_tokens(len(name) + 2)
            )
    content = f"sim:{provider}/{model}: {call.text}"
    if echo:
        content = f"{content} (your key is {echo})"
    if call.json_mode and not call.prose:  # prose: the plain echo, whatever was asked
        content = json_text(call.json_schema, content)
    finish = Finish.stop
    if call.max_tokens is not None and len(content) > call.max_tokens * 4:
        content = content[: call.max_tokens * 4]
        finish = Finish.length
    return Answer(model, content, None, finish, prompt, estimate_tokens(len(content), density))
