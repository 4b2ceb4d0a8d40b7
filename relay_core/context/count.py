"""Relay's one token estimate: per-class rates, counted at C speed, never per character in Python.

Real tokenizers (tiktoken's ``cl100k_base``/``o200k_base``, SentencePiece models) are not
available offline, and every provider counts with its own anyway. The estimate costs each
class of text at a rate taken from a dense tokenizer (SmolLM2's 49k-token BPE, which splits
numbers digit by digit and most non-English text into bytes); ``tests/fixtures/tokens/
labelled.jsonl`` holds its real counts of 44 texts and a unit test keeps the estimate close to
them (docs/context.md):

* a run of ASCII letters (a word, with the space before it) is one token, plus one per seven
  letters in a row and one per lower-to-upper hump (``camelCase``, random strings);
* a **digit** is one token;
* a non-ASCII character costs by its UTF-8 length: 1 for two bytes (accented Latin, Greek,
  Cyrillic, Arabic), 2 for three (Chinese, Japanese, Indic, Thai), 3 for a Hangul syllable
  and for four bytes (emoji);
* ASCII punctuation is two tokens per three marks, a newline one, other whitespace one per
  four characters (the single space before a word rides along with it).

The text's bytes are mapped to class bytes (``bytes.translate``) and each class counted with
``bytes.count``: linear at C speed (about 10 ms per MB), and never below ``len(text) / 8``
tokens, so :func:`lower_bound` can refuse a huge request without counting it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from relay_core.schemas.chat import Message

PER_MESSAGE = 4  # role and separators in the chat template
PER_REQUEST = 3  # the assistant turn the template opens
PER_IMAGE = 255  # an image part: between low detail (85) and one high-detail tile pair
LETTERS_PER_TOKEN = 7

SPACES_PER_TOKEN = 4
CHARS_PER_TOKEN_MIN = 8  # no text is estimated below len(text) / 8 tokens


def _class_table() -> bytes:
    table = bytearray(b"." * 256)  # ASCII punctuation and symbols
    table[0x80:0xC0] = b"c" * 0x40  # continuation bytes: costed through the lead byte
    table[0xC0:0xE0] = b"2" * 0x20  # a 2-byte character: Latin, Greek, Cyrillic, Arabic
    table[0xE0:0xF0] = b"3" * 0x10  # a 3-byte character: CJK, kana, Indic, Thai
    table[0xEA:0xEE] = b"k" * 0x04  # U+A000-U+DFFF: Hangul syllables (and rarer scripts)
    table[0xF0:0x100] = b"4" * 0x10  # a 4-byte character: emoji, rare CJK
    table[ord("a") : ord("z") + 1] = b"a" * 26
    table[ord("A") : ord("Z") + 1] = b"A" * 26
    table[ord("0") : ord("9") + 1] = b"0" * 10
    for c in b" \t\r\x0b\x0c":
        table[c] = ord(" ")
    table[ord("\n")] = ord("\n")
    return bytes(table)


_CLASSES = _class_table()
_LETTER_OR_NOT = bytes(ord("a") if c in b"aA" else ord(" ") for c in range(256))
_LONG = b"a" * LETTERS_PER_TOKEN
# Tokens per character of each non-ASCII class (by its UTF-8 lead byte).
WIDE_COSTS = ((b"2", 1), (b"3", 2), (b"k", 3), (b"4", 3))


def _letters(classes: bytes) -> tuple[int, int]:
    """(tokens of the ASCII words, number of words)."""
    if b"a" not in classes and b"A" not in classes:
        return 0, 0
    letters = classes.translate(_LETTER_OR_NOT)
    words = letters.count(b" a") + (letters[0] == ord("a"))
    longer = letters.count(_LONG)  # one more token per LETTERS_PER_TOKEN letters in a row
    humps = classes.count(b"aA")  # camelCase, random case: a new token at each hump
    return words + longer + humps, words


def count_text(text: str) -> int:
    """Estimated tokens in ``text``."""
    if not text:
        return 0
    classes = text.encode("utf-8", "surrogatepass").translate(_CLASSES)
    n, words = _letters(classes)
    n += classes.count(b"0") + classes.count(b"\n")
    n += -(-classes.count(b".") * 2 // 3)  # two tokens per three marks
    n += -(-max(0, classes.count(b" ") - words) // SPACES_PER_TOKEN)
    n += sum(cost * classes.count(cls) for cls, cost in WIDE_COSTS)
    return max(n, 1)


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


def count_each(messages: Iterable[Message]) -> list[int]:
    """:func:`count_message` of every message, in order (what a request carries, counted once)."""
    return [count_message(m) for m in messages]


def count_messages(messages: Iterable[Message]) -> int:
    """Estimated prompt tokens of a whole conversation."""
    return PER_REQUEST + sum(count_each(messages))


def message_chars(message: Message) -> int:
    """Characters :func:`count_message` reads (text, name, tool calls), without reading them."""
    n = len(message.text()) + len(message.name or "")
    for call in message.tool_calls or ():
        n += len(call.function.name) + len(call.function.arguments)
    return n


def lower_bound(messages: Sequence[Message]) -> int:
    """A floor under :func:`count_messages`, from lengths alone (no per-character work)."""
    chars = sum(message_chars(m) for m in messages)
    return PER_REQUEST + PER_MESSAGE * len(messages) + chars // CHARS_PER_TOKEN_MIN
