"""The simulator's embeddings: a deterministic vector per text, so a test can check that each
input got *its own* vector, whichever provider or family answered.

``vector(text, n)`` is ``n`` numbers drawn from BLAKE2b of the text (in counter mode, 8 bytes
a number), scaled to unit length. A model asked for fewer dimensions than its own (``keep``)
answers the first ``keep`` numbers of its own vector, scaled to unit length again, as
Matryoshka-trained models do.
"""

from __future__ import annotations

import hashlib
import math
import struct

DEFAULT_DIMENSIONS = 16  # an embeddings model of the simulator that declares none


def vector(text: str, dimensions: int, keep: int | None = None) -> list[float]:
    """The unit vector of ``text`` for a model of ``dimensions``, cut to ``keep`` if given."""
    data = text.encode()
    raw: list[float] = []
    counter = 0
    while len(raw) < dimensions:
        block = hashlib.blake2b(data, digest_size=64, salt=counter.to_bytes(16, "little"))
        raw += [
            (n / 2**63) - 1.0 for n in struct.unpack("<8Q", block.digest())
        ]  # uniform in [-1, 1)
        counter += 1
    cut = raw[: keep if keep is not None else dimensions]
    norm = math.sqrt(sum(x * x for x in cut)) or 1.0
    return [round(x / norm, 7) for x in cut]


def token_text(ids: list[int]) -> str:
    """What a list of token ids stands for, to the simulator: its vector's seed text."""
    return "tokens:" + ",".join(str(i) for i in ids)
