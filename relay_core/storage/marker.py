"""Do the API and this worker see the same storage? A worker that reads another folder or
bucket than the API would fail every batch line it sends (``input_file_unavailable``) and
write output files the API cannot serve, so it is told before it looks after any batch.

The API keeps a random token in storage (the object ``relay-storage-id``, made once) and
writes it to Redis at start; a worker reads the token from its own storage and compares. A
worker whose storage differs (or holds no token) serves chat traffic and batch lines others
send, but does not feed, validate or finalize batches, and says so in its log.
"""

from __future__ import annotations

import secrets

from redis.asyncio import Redis

from relay_core.storage.base import ObjectStorage

MARKER = "relay-storage-id"  # never a file id (those start with "file-")


def _key(prefix: str) -> str:
    return f"{prefix}:storage"


async def _read(storage: ObjectStorage) -> str | None:
    try:
        found = await storage.read_ranges(MARKER, [(0, 64)])
    except FileNotFoundError:
        return None
    return found[0].decode() or None


async def announce(redis: Redis, prefix: str, storage: ObjectStorage) -> str:
    """The API's side: the storage's token (made when it has none), written to Redis."""
    token = await _read(storage)
    if token is None:
        token = secrets.token_hex(16)
        async with storage.open_write(MARKER) as out:
            await out.write(token.encode())
    await redis.set(_key(prefix), token)
    return token


async def same_as_api(redis: Redis, prefix: str, storage: ObjectStorage) -> bool | None:
    """The worker's side: True when its storage is the API's, False when it is not, None when
    no API has said yet."""
    raw = await redis.get(_key(prefix))
    if raw is None:
        return None
    expected = raw.decode() if isinstance(raw, bytes) else str(raw)
    return await _read(storage) == expected
