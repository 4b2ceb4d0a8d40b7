"""A worker tells whether its storage is the API's (a folder or bucket of its own would fail
every batch line it sends), on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakeredis import FakeAsyncRedis

from relay_core.storage import ObjectStorage
from relay_core.storage.local import LocalStorage
from relay_core.storage.marker import announce, same_as_api
from relay_core.storage.s3 import S3Storage
from tests.support.s3 import Bucket


@pytest.fixture(params=["local", "s3"])
def two_storages(
    request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[ObjectStorage, ObjectStorage, ObjectStorage]:
    """The API's storage, the same one opened again, and another."""
    if request.param == "local":
        root = tmp_path / "files"
        return LocalStorage(root), LocalStorage(root), LocalStorage(tmp_path / "other")
    bucket: Bucket = request.getfixturevalue("s3_bucket")
    other = f"s3://{bucket.name}/another-prefix"
    return (
        S3Storage.from_url(bucket.url, bucket.endpoint_url),
        S3Storage.from_url(bucket.url, bucket.endpoint_url),
        S3Storage.from_url(other, bucket.endpoint_url),
    )


async def test_a_worker_sees_whether_its_storage_is_the_apis(two_storages):
    api, same, other = two_storages
    redis = FakeAsyncRedis()
    assert await same_as_api(redis, "p", same) is None  # no API has said yet
    token = await announce(redis, "p", api)
    assert await same_as_api(redis, "p", same) is True
    assert await same_as_api(redis, "p", other) is False
    assert await announce(redis, "p", api) == token  # a restarted API keeps the token
    await announce(redis, "p", other)  # the API moved to other storage: this worker did not
    assert await same_as_api(redis, "p", same) is False
