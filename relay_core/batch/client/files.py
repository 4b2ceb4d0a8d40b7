"""Files: bytes in a local folder (``RELAY_STORAGE_DIR``), records in Redis.

A file's bytes live at ``{storage_dir}/{file_id}``; its record (the OpenAI file object plus
owner and line count) under ``{prefix}:file:{id}``, and its id in the owner's sorted set for
listing. Every read checks the owner: another gateway key's file is a 404, as if it did not
exist. The folder must be shared by the API and the workers (they read batch input from it).
"""

from __future__ import annotations

import contextlib
import secrets
import time
from pathlib import Path

from redis.asyncio import Redis

from relay_core.batch.models import FilePurpose, FileRecord
from relay_core.batch.store.keys import file_key, owner_files
from relay_core.errors import NotFound


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def new_file_id() -> str:
    return "file-" + secrets.token_hex(12)


class FileStore:
    def __init__(self, redis: Redis, prefix: str, storage_dir: Path) -> None:
        self.redis = redis
        self.prefix = prefix
        self.dir = storage_dir

    def path(self, file_id: str) -> Path:
        if not file_id.startswith("file-") or "/" in file_id or ".." in file_id:
            raise NotFound(f"No such File object: {file_id}", param="file_id")
        return self.dir / file_id

    def staging_path(self, file_id: str) -> Path:
        return self.dir / f".{file_id}.part"

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
        """Record a file whose bytes are already at :meth:`path` (or its staging path, which
        is moved into place first)."""
        staged = self.staging_path(file_id)
        if staged.exists():
            staged.replace(self.path(file_id))
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

    async def content_path(self, file_id: str, owner: str) -> Path:
        """Where the owner's file ``file_id`` is on disk; :class:`NotFound` when the file was
        deleted, or its content is gone from storage."""
        await self.get(file_id, owner)
        path = self.path(file_id)
        if not path.is_file():
            raise NotFound(f"The content of File {file_id} is no longer stored.", param="file_id")
        return path

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
        with contextlib.suppress(FileNotFoundError):
            self.path(file_id).unlink()
