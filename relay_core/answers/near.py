"""The near-duplicate key: the same request but for what does not change the question —
whitespace, letter case, punctuation and filler words, dates and ids (docs/answers.md).

Each message's text is brought to a canonical form (lower case; dates → ``<date>``, ids →
``<id>``; words, numbers and symbols kept in order; separating punctuation — ``, . ; : !`` and
quotes — and a few filler words dropped), and
the key is the hash of the canonical request with those texts in place of the messages. Two
requests share the key only when everything else matches exactly (the exact key's fields) and
their texts have the same words, numbers and order once dates and ids are set aside. So a
negation, a swapped entity, a changed number or reordered clauses always change it.

Dates: ISO dates and times (``2024-05-01``, ``2024-05-01T10:32:05Z``), ``05/01/2024``, and
``May 1, 2024`` / ``1 May 2024``. Ids: UUIDs, hex strings of 16 or more characters, and a
prefix of at most five letters before a body of 4 digits or more with no run of three letters
(``INV-20391``, ``req_8f3a2c9d``): names such as ``gpt-4o``, ``covid-19``, ``windows2000`` or
``claude-3-5-sonnet-20241022`` stay words. An id that *is* the question (``CVE-2024-3094``
against ``CVE-2021-44228``) is set aside all the same: do not turn near-duplicates on for
prompts like that. A request whose messages
carry anything but text (images, tool calls) has no near-duplicate key.
"""

from __future__ import annotations

import hashlib
import re

import orjson

from relay_core.answers.cache_key import canonical_request
from relay_core.schemas.chat import ChatCompletionRequest, Message
from relay_core.settings import Settings

_MONTHS = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_DATES = re.compile(
    r"\b\d{4}-\d{2}-\d{2}(?:[t ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:z|[+-]\d{2}:?\d{2})?)?\b"
    r"|\b\d{1,2}/\d{1,2}/\d{2,4}\b"
    rf"|\b{_MONTHS}\.? \d{{1,2}}(?:st|nd|rd|th)?,? \d{{4}}\b"
    rf"|\b\d{{1,2}}(?:st|nd|rd|th)? {_MONTHS}\.?,? \d{{4}}\b"
)
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
_TOKEN = re.compile(r"<date>|<id>|\d+(?:[.,]\d+)+\b|\w[\w\-]*(?:'\w+)*|[^\w\s]")
# Dropped: filler words, and the punctuation that separates rather than says (a "?", an
# operator, a bracket or a currency sign is kept: "5 - 3" is not "5 + 3").
FILLER = frozenset({"please", "kindly", "pls", "plz"})
SOFT = frozenset(",.;:!'\"`\u2018\u2019\u201c\u201d")
ID_MIN_DIGITS, HEX_MIN_CHARS = 4, 16


_PREFIXED = re.compile(r"([a-z]{1,5})[-_#]?([0-9a-z\-]+)")
_LETTER_RUN = re.compile(r"[a-z]{3,}")


def _is_id(token: str) -> bool:
    """Hex of 16 or more characters, or a short prefix and a digit-heavy body
    (``INV-20391``, ``req_8f3a2c9d``, ``ORD2024X991``): not ``windows2000``, ``sha256sum``,
    ``claude-3-5-sonnet-20241022`` or ``100-word``, which name things."""
    digits = sum(c.isdigit() for c in token)
    if len(token) >= HEX_MIN_CHARS and digits and re.fullmatch(r"[0-9a-f]+", token):
        return True
    m = _PREFIXED.fullmatch(token)
    if m is None or not token[:1].isalpha() or token[len(m.group(1)) :][:1].isalpha():
        return False
    body = m.group(2)
    return digits >= ID_MIN_DIGITS and _LETTER_RUN.search(body) is None


def canonical_tokens(text: str) -> list[str]:
    """The words and numbers of ``text`` in order, dates and ids set aside."""
    text = text.lower().replace("\u2019", "'")
    text = _UUID.sub(" <id> ", _DATES.sub(" <date> ", text))
    tokens = []
    for token in _TOKEN.findall(text):
        if token in FILLER or token in SOFT:
            continue
        tokens.append("<id>" if _is_id(token) else token)
    return tokens


def _text_only(message: Message) -> bool:
    if message.tool_calls or message.tool_call_id:
        return False
    content = message.content
    return not isinstance(content, list) or all(p.get("type") == "text" for p in content)


def near_digest(
    request: ChatCompletionRequest, settings: Settings, *, fallback_any: bool = False
) -> str | None:
    """The near-duplicate key (sha256, hex), or None when a message is not plain text."""
    if not all(_text_only(m) for m in request.messages):
        return None
    texts = [[m.role, *canonical_tokens(m.text())] for m in request.messages]
    rest = request.model_copy(update={"messages": [Message(role="user", content="")]})
    document = {
        "texts": texts,
        "rest": canonical_request(rest, settings, fallback_any=fallback_any).decode(),
    }
    return hashlib.sha256(orjson.dumps(document)).hexdigest()
