"""A token-count estimate that does not need a tokenizer download.

Real tokenizers (tiktoken's ``cl100k_base``/``o200k_base``, SentencePiece models) are not
available offline, and every provider counts with its own anyway. This estimate imitates how
byte-pair tokenizers split text: a pre-tokenizer pass close to ``cl100k_base``'s pattern
(words with their leading space, numbers in groups of up to three digits, punctuation runs,
newline runs), then a cost per piece:

* a short ASCII word is one token, a longer one one more per six letters;
* a non-ASCII letter (CJK, Cyrillic, accented text) is one token each;
* numbers cost one token per group of up to three digits;
* punctuation costs one token per two characters; a run of whitespace costs one.

It errs on the high side for prose and code alike (see docs/context.md), and context fitting
keeps a safety margin on top of it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from relay_core.schemas.chat import Message

# cl100k_base's pre-tokenizer, with \p{L} approximated by [^\W\d_] and \p{N} by \d (so
# "neither a letter nor a digit" is [^\w] or the underscore).
_PIECES = re.compile(
    r"'(?:[sdmt]|ll|ve|re)"
    r"|(?:[^\r\n\w]|_)?[^\W\d_]+"
    r"|\d{1,3}"
    r"| ?(?:[^\s\w]|_)+[\r\n]*"
    r"|\s*[\r\n]+"
    r"|\s+",
    re.IGNORECASE,
)

PER_MESSAGE = 4  # role and separators in the chat template
PER_REQUEST = 3  # the assistant turn the template opens
PER_IMAGE = 255  # an image part: between low detail (85) and one high-detail tile pair
LETTERS_PER_TOKEN = 6


def _piece_cost(piece: str) -> int:
    if piece[0].isdigit():
        return 1
    word = piece.lstrip(" \t")
    if len(word) > 1 and not word[0].isalpha() and word[1].isalpha():
        word = word[1:]  # a punctuation mark glued to a word (":word") rides along with it
    if word and (word[0].isalpha() or word[0] == "'"):
        wide = sum(1 for ch in word if not ch.isascii())
        narrow = len(word) - wide
        return wide + (1 + (narrow - 1) // LETTERS_PER_TOKEN if narrow else 0)
    if piece.isspace():
        return 1
    return max(1, (len(piece.strip()) + 1) // 2)


def count_text(text: str) -> int:
    """Estimated tokens in ``text``."""
    if not text:
        return 0
    return sum(_piece_cost(m.group()) for m in _PIECES.finditer(text))


def _images(message: Message) -> int:
    if not isinstance(message.content, list):
        return 0
    return sum(1 for part in message.content if part.get("type") == "image_url")


def count_message(message: Message) -> int:
    """Estimated tokens ``message`` takes in the prompt, template overhead included."""
    n = PER_MESSAGE + count_text(message.text()) + PER_IMAGE * _images(message)
    if message.name:
        n += count_text(message.name)
    for call in message.tool_calls or ():
        n += PER_MESSAGE + count_text(call.function.name) + count_text(call.function.arguments)
    return n


def count_messages(messages: Iterable[Message]) -> int:
    """Estimated prompt tokens of a whole conversation."""
    return PER_REQUEST + sum(count_message(m) for m in messages)
