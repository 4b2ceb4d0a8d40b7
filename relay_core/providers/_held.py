"""A stream's text fields scrubbed of the provider's key across chunks.

Each text field of each choice (``content``, a tool call's ``arguments``, a string extra such
as DeepSeek's ``reasoning_content``) has its own :class:`~relay_core.providers._scrub.HeldText`:
the end of what arrived is held while it could be the start of the key, and sent with the
next piece, with the choice's finishing chunk, or (a stream that ends without one) in
:meth:`StreamScrubber.rest`.
"""

from __future__ import annotations

from relay_core.providers._scrub import HeldText
from relay_core.schemas.chat import ChatCompletionChunk, Delta, ToolCallDelta

CONTENT, TOOL = "content", "tool"

Where = tuple[int, str, int]  # (choice index, field: CONTENT, TOOL or an extra's name, tool index)


class StreamScrubber:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.texts: dict[Where, HeldText] = {}

    def chunk(self, chunk: ChatCompletionChunk) -> ChatCompletionChunk:
        """``chunk`` with what may be the start of the key taken out (and what was held put
        back once it cannot be), in place."""
        for choice in chunk.choices:
            self._delta(choice.index, choice.delta)
            if choice.finish_reason is not None:
                self._flush(choice.index, choice.delta)
        return chunk

    def rest(self) -> list[tuple[int, Delta]]:
        """What is still held when the stream ended without finishing a choice."""
        out = []
        for index in sorted({where[0] for where in self.texts}):
            delta = Delta()
            if self._flush(index, delta):
                out.append((index, delta))
        return out

    def _feed(self, where: Where, text: str) -> str:
        return self.texts.setdefault(where, HeldText(self.secret)).feed(text)

    def _delta(self, index: int, delta: Delta) -> None:
        if delta.content:
            delta.content = self._feed((index, CONTENT, 0), delta.content)
        extra = delta.model_extra or {}
        for name, value in extra.items():
            if isinstance(value, str) and value:
                extra[name] = self._feed((index, name, 0), value)
        for call in delta.tool_calls or ():
            if call.function and call.function.get("arguments"):
                where = (index, TOOL, call.index)
                call.function["arguments"] = self._feed(where, call.function["arguments"])

    def _flush(self, index: int, delta: Delta) -> bool:
        """Put what ``index`` holds into ``delta``; whether there was anything."""
        put = False
        for (choice, field, tool), text in self.texts.items():
            rest = text.flush() if choice == index else ""
            if not rest:
                continue
            put = True
            if field == CONTENT:
                delta.content = (delta.content or "") + rest
            elif field == TOOL:
                _tool_arguments(delta, tool, rest)
            else:
                setattr(delta, field, (getattr(delta, field, None) or "") + rest)
        return put


def _tool_arguments(delta: Delta, tool: int, rest: str) -> None:
    calls = delta.tool_calls if delta.tool_calls is not None else []
    call = next((c for c in calls if c.index == tool), None)
    if call is None:
        calls.append(ToolCallDelta(index=tool, function={"arguments": rest}))
    else:
        call.function = {
            **(call.function or {}),
            "arguments": (call.function or {}).get("arguments", "") + rest,
        }
    delta.tool_calls = calls
