"""Files: bytes in object storage (:mod:`relay_core.storage`), records in Redis.

A file's bytes are stored under its id (a folder's ``{RELAY_STORAGE_DIR}/{file_id}``, or an S3
object ``{prefix}/{file_id}`` with ``RELAY_STORAGE_URL``); its record (the OpenAI file object
plus owner and line count) under ``{prefix}:file:{id}``, and its id in the owner's sorted set
for listing. Every read checks the owner: another gateway key's file is a 404, as if it did
not exist. The API and the workers must reach the same storage (the workers read batch input
from it and write output files to it): one machine's folder, a shared mount, or a bucket.
"""

from __future__ import annotations

import secrets
import time

from redis.asyncio import Redis

from relay_core.batch.models import FilePurpose, FileRecord
from relay_core.batch.store.keys import file_key, owner_files
from relay_core.errors import NotFound
from relay_core.storage.base import ObjectStorage


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def new_file_id() -> str:
    return "file-" + secrets.token_hex(12)


class FileStore:
    def __init__(self, redis: Redis, prefix: str, storage: ObjectStorage) -> None:
        self.redis = redis
        self.prefix = prefix
        self.storage = storage

    @staticmethod
    def name(file_id: str) -> str:
        """The storage name of ``file_id`` (:class:`NotFound` for what cannot be an id)."""
        if not file_id.startswith("file-") or "/" in file_id or ".." in file_id:
            raise NotFound(f"No such File object: {file_id}", param="file_id")
        return file_id

    async def register(
        self,
        file_id: str,
        *,
        owner: str,
        filename: str,
        purpose: FilePurpose,
        size: int,
        lines: int,
    ) -> FileRecord:
        """Record a file whose bytes are already stored under :meth:`name`."""
        record = FileRecord(
            id=file_id,
            bytes=size,
            created_at=int(time.time()),
            filename=filename,
            purpose=purpose,
            owner=owner,
            lines=lines,
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(file_key(self.prefix, file_id), record.model_dump_json())
            pipe.zadd(owner_files(self.prefix, owner), {file_id: time.time()})
            await pipe.execute()
        return record

    async def get(self, file_id: str, owner: str) -> FileRecord:
        raw = await self.redis.get(file_key(self.prefix, file_id))
        record = None if raw is None else FileRecord.model_validate_json(raw)
        if record is None or record.owner != owner:
            raise NotFound(f"No such File object: {file_id}", param="file_id")
        return record

    async def content_size(self, file_id: str, owner: str) -> int:
        """The stored size of the owner's file ``file_id``; :class:`NotFound` when the file
        was deleted, or its content is gone from storage."""
        await self.get(file_id, owner)
        size = await self.storage.size(self.name(file_id))
        if size is None:
            raise NotFound(f"The content of File {file_id} is no longer stored.", param="file_id")
        return size

    async def page(
        self,
        owner: str,
        *,
        limit: int,
        after: str | None = None,
        purpose: str | None = None,
        newest_first: bool = True,
    ) -> tuple[list[FileRecord], bool]:
        """A page of the owner's files after the id ``after``, and whether more follow."""
        key = owner_files(self.prefix, owner)
        ids = [_text(i) for i in await self.redis.zrange(key, 0, -1, desc=newest_first)]
        if after is not None:
            ids = ids[ids.index(after) + 1 :] if after in ids else []
        found: list[FileRecord] = []
        for start in range(0, len(ids), 200):
            chunk = ids[start : start + 200]
            raws = await self.redis.mget([file_key(self.prefix, i) for i in chunk])
            for raw in raws:
                if raw is None:
                    continue
                record = FileRecord.model_validate_json(raw)
                if purpose is None or record.purpose == purpose:
                    found.append(record)
            if len(found) > limit:
                break
        return found[:limit], len(found) > limit

    async def delete(self, file_id: str, owner: str) -> None:
        await self.get(file_id, owner)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(file_key(self.prefix, file_id))
            pipe.zrem(owner_files(self.prefix, owner), file_id)
            await pipe.execute()
        await self.storage.delete(self.name(file_id))
