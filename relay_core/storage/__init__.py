"""Where file bytes live: one interface (:class:`ObjectStorage`), a folder or an S3 store."""

from relay_core.storage.base import ObjectStorage, StorageUnavailable, Writer
from relay_core.storage.open import open_storage

__all__ = ["ObjectStorage", "StorageUnavailable", "Writer", "open_storage"]
