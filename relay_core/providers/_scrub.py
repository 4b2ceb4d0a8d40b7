"""Scrubbing a provider's key out of what the provider says, before Relay passes it on.

An upstream may quote the key it was sent: in an error (``Incorrect API key provided: sk-…``),
or in an answer (a model asked to repeat its headers, a proxy's debug echo). What it says is
scrubbed where it is decoded, so JSON escapes (``\\u005f``, ``\\/``) cannot hide the key:

* :func:`scrub_text` on a message, :func:`scrub_body` on an error body (its decoded strings
  when it is JSON, written back decoded), :func:`scrub_value` on a decoded answer or event;
* :class:`HeldText` on the text of a stream, which may split the key across chunks: it holds
  back the end of the text while it could be the start of the key, and no longer.

Answers are scrubbed only of keys at least :data:`ANSWER_MIN_SECRET_CHARS` long: a short
"key" (``ollama``, ``EMPTY``, the placeholders local servers take) is ordinary text, and
scrubbing it would garble answers. Errors are scrubbed of any key.
"""

from __future__ import annotations

from typing import Any

import orjson

REDACTED = "[redacted]"
ANSWER_MIN_SECRET_CHARS = 12


def scrub_text(text: str, secret: str | None) -> str:
    if not secret or secret not in text:
        return text
    return text.replace(secret, REDACTED)


def scrub_value(value: Any, secret: str | None) -> Any:
    """``value`` (decoded JSON) with ``secret`` replaced in every string, keys included.

    Containers are changed in place (they are fresh from the decoder); iterative, so any
    nesting the decoder accepts is walked.
    """
    if not secret:
        return value
    if isinstance(value, str):
        return scrub_text(value, secret)
    stack = [value]
    while stack:
        stack.extend(_scrub_children(stack.pop(), secret))
    return value


def _scrub_children(node: Any, secret: str) -> list[Any]:
    """Scrub the strings directly inside ``node``; its containers, to be walked next."""
    if isinstance(node, dict):
        if any(secret in key for key in node):
            renamed = {scrub_text(k, secret): v for k, v in node.items()}
            node.clear()
            node.update(renamed)
        slots: Any = node.items()
    elif isinstance(node, list):
        slots = enumerate(node)
    else:
        return []
    nested = []
    for slot, item in list(slots):
        if isinstance(item, str):
            if secret in item:
                node[slot] = item.replace(secret, REDACTED)
        elif isinstance(item, dict | list):
            nested.append(item)
    return nested


def scrub_body(text: str, secret: str | None) -> str:
    """An upstream error body, scrubbed: a JSON body is decoded, scrubbed and written back
    (decoded, so what reads it later finds no escaped key); any other text as it is."""
    if not secret:
        return text
    try:
        decoded = orjson.loads(text)
    except orjson.JSONDecodeError:
        return scrub_text(text, secret)
    return orjson.dumps(scrub_value(decoded, secret)).decode()


def answer_secret(secret: str | None) -> str | None:
    """The key answers are scrubbed of (None: too short to tell from ordinary text)."""
    return secret if secret and len(secret) >= ANSWER_MIN_SECRET_CHARS else None


class HeldText:
    """One stream of text, scrubbed of ``secret`` across the pieces it arrives in."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.held = ""

    def feed(self, text: str) -> str:
        """The text that can be sent now; the rest is held until the next piece."""
        whole = scrub_text(self.held + text, self.secret)
        keep = _prefix_at_end(whole, self.secret)
        self.held = whole[len(whole) - keep :] if keep else ""
        return whole[: len(whole) - keep]

    def flush(self) -> str:
        """What is still held (at the end of the stream: it is not the key)."""
        out, self.held = self.held, ""
        return out


def _prefix_at_end(text: str, secret: str) -> int:
    """The length of the longest end of ``text`` that is a start of ``secret`` (shorter)."""
    start = max(0, len(text) - len(secret) + 1)
    i = text.find(secret[0], start)
    while i != -1:
        if secret.startswith(text[i:]):
            return len(text) - i
        i = text.find(secret[0], i + 1)
    return 0
