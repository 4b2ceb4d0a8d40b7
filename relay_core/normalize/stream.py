"""The normalizer on streams: the same rules as whole answers, applied as text flows.

Nothing is held back unless it has to be: the opening text while it may still be a preamble
(at most ``HOLD_CHARS``), and in JSON mode the text before the JSON starts and a line that may
be the closing fence. A code block still open at the end is closed in a chunk of its own
before the one carrying ``finish_reason``.
"""

from __future__ import annotations

from relay_core.normalize.answer import Normalize
from relay_core.normalize.fences import FenceTracker, fence_of
from relay_core.normalize.preamble import capitalise, decided, strip_once
from relay_core.schemas.chat import ChatCompletionChunk, ChunkChoice, Delta


class ProseStream:
    """Preambles stripped at the start, fences balanced at the end."""

    def __init__(self) -> None:
        self._head: str | None = ""  # the opening text, held until decided; then None
        self._stripped = False
        self._fences = FenceTracker()
        self._line = ""  # the current line of sent text
        self._last = ""  # the last character sent, for the closing fence's newline

    def feed(self, text: str) -> str:
        if self._head is None:
            return self._sent(text)
        head = self._head + text
        while decided(head):
            shorter = strip_once(head)
            if shorter is None or not shorter.strip():
                self._head = None
                return self._sent(capitalise(head) if self._stripped else head)
            head, self._stripped = shorter, True
        self._head = head
        return ""

    def _sent(self, text: str) -> str:
        if text:
            *done, self._line = (self._line + text).split("\n")
            for line in done:
                self._fences.line(line)
            self._last = text[-1]
        return text

    def flush(self) -> str:
        out = ""
        if self._head is not None:
            head, self._head = self._head, None
            while (shorter := strip_once(head)) is not None and shorter.strip():
                head, self._stripped = shorter, True
            out = self._sent(capitalise(head) if self._stripped else head)
        self._fences.line(self._line)
        return out + self._fences.closer(self._last or "\n")


class JsonStream:
    """Prose before the JSON dropped; the fence around it, and anything after, too."""

    def __init__(self) -> None:
        self._before: str | None = ""  # held until the JSON starts; None once it has
        self._line = ""  # a line held while it may be the closing fence
        self._bol = False  # the next text starts a line
        self._done = False

    def feed(self, text: str) -> str:
        if self._done:
            return ""
        if self._before is not None:
            self._before += text
            starts = [i for i in (self._before.find("{"), self._before.find("[")) if i >= 0]
            if not starts:
                return ""
            text, self._before = self._before[min(starts) :], None
        return self._body(text)

    def _body(self, text: str) -> str:
        out: list[str] = []
        for piece in text.splitlines(keepends=True):
            lead = piece.lstrip(" ")
            if self._line or (self._bol and (not lead or lead.startswith("`"))):
                self._line += piece
                if not piece.endswith("\n"):
                    self._bol = False
                    continue
                line, self._line = self._line, ""
                if fence_of(line) is not None:
                    self._done = True
                    break
                out.append(line)
            else:
                out.append(piece)
            self._bol = piece.endswith("\n")
        return "".join(out)

    def flush(self) -> str:
        if self._before is not None:
            held, self._before = self._before, None
            return held
        line, self._line = self._line, ""
        return "" if self._done or fence_of(line) is not None else line


ContentStream = ProseStream | JsonStream


class ChunkNormalizer:
    """Applies :class:`ProseStream`/:class:`JsonStream` to each choice of a chunk stream."""

    def __init__(self, how: Normalize) -> None:
        self.how = how
        self._streams: dict[int, ContentStream] = {}

    def _stream(self, index: int) -> ContentStream:
        if index not in self._streams:
            self._streams[index] = JsonStream() if self.how.json else ProseStream()
        return self._streams[index]

    def chunk(self, chunk: ChatCompletionChunk) -> list[ChatCompletionChunk]:
        """The chunks to send for ``chunk`` (none while text is held, two at the end)."""
        if not self.how.active or not chunk.choices:
            return [chunk]
        before: list[ChunkChoice] = []
        kept: list[ChunkChoice] = []
        for choice in chunk.choices:
            stream = self._stream(choice.index)
            delta = choice.delta
            if delta.content:
                delta = delta.model_copy(update={"content": stream.feed(delta.content)})
            if choice.finish_reason is not None:
                rest = stream.flush()
                if rest:
                    before.append(ChunkChoice(index=choice.index, delta=Delta(content=rest)))
            if delta.content or _carries_more(delta) or choice.finish_reason is not None:
                kept.append(choice.model_copy(update={"delta": delta}))
        out = [chunk.model_copy(update={"choices": before})] if before else []
        if kept:
            out.append(chunk.model_copy(update={"choices": kept}))
        return out


def _carries_more(delta: Delta) -> bool:
    return delta.role is not None or delta.tool_calls is not None or bool(delta.model_extra)
