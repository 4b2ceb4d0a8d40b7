"""Which storage the settings name: a folder by default, an S3 bucket with RELAY_STORAGE_URL."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from relay_core.settings import Settings
from relay_core.storage import open_storage
from relay_core.storage.local import LocalStorage
from relay_core.storage.s3 import S3Storage


def test_the_folder_is_the_default_and_a_blank_url_means_it(tmp_path: Path) -> None:
    for settings in (
        Settings(storage_dir=tmp_path),
        Settings(storage_dir=tmp_path, storage_url="", s3_endpoint_url=" "),
    ):
        storage = open_storage(settings)
        assert isinstance(storage, LocalStorage) and storage.root == tmp_path


def test_an_s3_url_opens_the_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "very-secret-value")
    settings = Settings(storage_url="s3://bucket/relay", s3_endpoint_url="http://10.0.0.5:9000")
    storage = open_storage(settings)
    assert isinstance(storage, S3Storage)
    assert storage.describe() == "s3://bucket/relay"  # what the logs say: no credential


@pytest.mark.parametrize(
    ("field", "value"),
    [("storage_url", "/srv/files"), ("storage_url", "gs://bucket"), ("s3_endpoint_url", "minio")],
)
def test_a_storage_setting_of_another_form_is_refused(field: str, value: str) -> None:
    with pytest.raises(ValidationError):
        Settings.model_validate({field: value})
