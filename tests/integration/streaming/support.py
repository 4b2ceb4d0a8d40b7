"""Reading SSE streams the way a client does, for the streaming tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson


@dataclass
class Event:
    data: str
    event: str | None = None

    def json(self) -> Any:
        return orjson.loads(self.data)


@dataclass
class SSE:
    status: int
    headers: httpx.Headers
    events: list[Event] = field(default_factory=list)
    body: bytes = b""

    @property
    def chunks(self) -> list[dict[str, Any]]:
        return [e.json() for e in self.events if e.event is None and e.data != "[DONE]"]

    @property
    def text(self) -> str:
        return "".join(
            c["choices"][0]["delta"].get("content") or "" for c in self.chunks if c["choices"]
        )


def parse_events(raw: str) -> list[Event]:
    events: list[Event] = []
    for block in raw.split("\n\n"):
        if not block.strip():
            continue
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        events.append(Event("\n".join(data), name))
    return events


def stream(http: httpx.Client, body: dict[str, Any], **kw: Any) -> SSE:
    with http.stream("POST", "/v1/chat/completions", json={**body, "stream": True}, **kw) as r:
        raw = r.read()
    if r.status_code != 200:
        return SSE(r.status_code, r.headers, body=raw)
    return SSE(r.status_code, r.headers, parse_events(raw.decode()), raw)


def ask(text: str, model: str = "chat", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}
