"""Scrubbing a provider's key out of what the provider says, before Relay passes it on.

An upstream may quote the key it was sent: in an error (``Incorrect API key provided: sk-…``),
or in an answer (a model asked to repeat its headers, a proxy's debug echo). What it says is
scrubbed where it is decoded, so JSON escapes (``\\u005f``, ``\\/``) cannot hide the key:

* :func:`scrub_text` on a message, :func:`scrub_body` on an error body (its decoded strings
  when it is JSON, written back decoded), :func:`scrub_value` on a decoded answer or event;
* :class:`HeldText` on the text of a stream, which may split the key across chunks: it holds
  back the end of the text while it could be the start of the key, and no longer.

What an upstream says in an *error* is also scrubbed of its own file paths (:func:`scrub_paths`):
a server that answers 500 with its Python traceback (``File "/usr/lib/python3/site-packages/
llama_cpp/server/app.py", line 312``) or a Windows path (``C:\\llama\\server.py``) would
otherwise tell every client how it is installed. Each is replaced by :data:`PATH`.

Answers are scrubbed only of keys at least :data:`ANSWER_MIN_SECRET_CHARS` long: a short
"key" (``ollama``, ``EMPTY``, the placeholders local servers take) is ordinary text, and
scrubbing it would garble answers. Errors are scrubbed of any key.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

REDACTED = "[redacted]"
PATH = "[path]"
ANSWER_MIN_SECRET_CHARS = 12

# Top folders that say a POSIX path is a file system's (not an API's, such as /v1/models).
_SYSTEM_ROOTS = frozenset(
    {
        *("app", "bin", "boot", "build", "data", "dev", "etc", "home", "lib", "lib64", "mnt"),
        *("nix", "opt", "private", "proc", "root", "run", "sbin", "snap", "srv", "sys", "tmp"),
        *("Users", "usr", "var", "Volumes", "workspace"),
    }
)
_QUOTED = re.compile(r"""(["'])((?:[A-Za-z]:[\\/]|\\\\|/)[^"'\r\n]*)\1""")
_WINDOWS = re.compile(r"(?<![\w])(?:[A-Za-z]:[\\/]|\\\\[\w.$-]+\\)[^\s\"'<>|,;()\[\]]*")
_POSIX = re.compile(r"(?<![\w.:/~\\-])(?:/[\w.@+~-]+){2,}/?")
_EXTENSION = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,7}$")


def scrub_text(text: str, secret: str | None) -> str:
    if not secret or secret not in text:
        return text
    return text.replace(secret, REDACTED)


def _is_file_path(path: str) -> bool:
    """A Windows path, or a POSIX one under a system folder or naming a file (``x.py``)."""
    if path[:1] != "/":
        return True
    parts = [p for p in path.split("/") if p]
    if not parts:
        return False
    return parts[0] in _SYSTEM_ROOTS or (len(parts) > 1 and bool(_EXTENSION.search(parts[-1])))


def _path_or_kept(match: re.Match[str]) -> str:
    return PATH if _is_file_path(match.group(0)) else match.group(0)


def _quoted_path_or_kept(match: re.Match[str]) -> str:
    quote, path = match.group(1), match.group(2)
    return f"{quote}{PATH}{quote}" if _is_file_path(path) else match.group(0)


def scrub_paths(text: str) -> str:
    """``text`` with every file path in it (POSIX or Windows) replaced by :data:`PATH`.

    Quoted paths may hold spaces (``"C:\\Program Files\\x.py"``); unquoted ones end at the
    first space. URL paths (``https://host/v1/x``) and API paths (``/v1/chat/completions``)
    are kept.
    """
    if "/" not in text and "\\" not in text:
        return text
    text = _QUOTED.sub(_quoted_path_or_kept, text)
    text = _WINDOWS.sub(PATH, text)
    return _POSIX.sub(_path_or_kept, text)


def scrub_error_text(text: str, secret: str | None) -> str:
    """An upstream's error message, scrubbed of the key and of the upstream's file paths."""
    return scrub_paths(scrub_text(text, secret))


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
    """An upstream error body, scrubbed of the key and of file paths: a JSON body is decoded,
    scrubbed and written back (decoded, so what reads it later finds no escaped key or path);
    any other text as it is. Without a key, a body with no path in it is returned as it is."""
    try:
        decoded = orjson.loads(text)
    except orjson.JSONDecodeError:
        return scrub_error_text(text, secret)
    changed = isinstance(decoded, dict | list) and _scrub_paths_in(decoded)
    if secret:
        return orjson.dumps(scrub_value(decoded, secret)).decode()
    return orjson.dumps(decoded).decode() if changed else text


def _scrub_paths_in(value: Any) -> bool:
    """Apply :func:`scrub_paths` to every string value in ``value`` (decoded JSON; containers
    are changed in place, iteratively); whether anything changed."""
    changed = False
    stack = [value]
    while stack:
        node = stack.pop()
        slots: Any = node.items() if isinstance(node, dict) else enumerate(node)
        for slot, item in list(slots):
            if isinstance(item, str):
                scrubbed = scrub_paths(item)
                if scrubbed != item:
                    node[slot], changed = scrubbed, True
            elif isinstance(item, dict | list):
                stack.append(item)
    return changed


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
