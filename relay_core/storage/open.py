"""The storage the settings name: ``RELAY_STORAGE_URL`` (``s3://bucket/prefix``, with
``RELAY_S3_ENDPOINT_URL`` for a store other than AWS) or, when unset, the folder
``RELAY_STORAGE_DIR``."""

from __future__ import annotations

from relay_core.settings import Settings
from relay_core.storage.base import ObjectStorage
from relay_core.storage.local import LocalStorage


def open_storage(settings: Settings) -> ObjectStorage:
    url = settings.storage_url
    if url is None:
        return LocalStorage(settings.storage_dir)
    from relay_core.storage.s3 import S3Storage  # the client loads only where it is used

    return S3Storage.from_url(url, settings.s3_endpoint_url)
