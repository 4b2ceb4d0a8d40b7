"""Consistent output for whole answers (streams: :mod:`relay_core.normalize.stream`).

What is applied, per request:

* ``response_format`` asks for JSON: the JSON is taken out of a code fence (or from around
  prose) when the answer is not JSON already — always, since nothing else can be what the
  client wants;
* ``RELAY_NORMALIZE_OUTPUT=true``: preambles are stripped from the start of the answer
  (:mod:`relay_core.normalize.preamble`) and a code block left open at the end is closed.
  Nothing else changes: text inside code, blank lines included, is never touched.
"""

from __future__ import annotations

from dataclasses import dataclass

from relay_core.normalize.fences import balance_fences
from relay_core.normalize.jsonmode import extract_json, wants_json
from relay_core.normalize.preamble import strip_preamble
from relay_core.schemas.chat import ChatCompletion, ChatCompletionRequest


@dataclass(frozen=True, slots=True)
class Normalize:
    """Which normalizations one request gets."""

    preambles: bool = False
    json: bool = False

    @classmethod
    def for_request(cls, request: ChatCompletionRequest, enabled: bool) -> Normalize:
        json = wants_json(request)
        return cls(preambles=enabled and not json, json=json)

    @property
    def active(self) -> bool:
        return self.preambles or self.json


OFF = Normalize()


def normalize_text(text: str, how: Normalize) -> str:
    if how.json:
        return extract_json(text)
    if how.preambles:
        return balance_fences(strip_preamble(text))
    return text


def normalize_completion(body: ChatCompletion, how: Normalize) -> ChatCompletion:
    if not how.active:
        return body
    choices = [
        c.model_copy(
            update={
                "message": c.message.model_copy(
                    update={"content": normalize_text(c.message.content, how)}
                )
            }
        )
        if c.message.content
        else c
        for c in body.choices
    ]
    return body.model_copy(update={"choices": choices})
