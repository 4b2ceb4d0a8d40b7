"""A real S3-protocol server for tests: moto's standalone server, in a thread on a free port.

Each test gets a bucket of its own (and the ``AWS_*`` variables the client reads, which worker
processes inherit through :func:`tests.support.farm.settings_env`)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from moto.server import ThreadedMotoServer

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "relay-test-key",
    "AWS_SECRET_ACCESS_KEY": "relay-test-secret",
    "AWS_REGION": "us-east-1",
}


@dataclass(frozen=True)
class Bucket:
    endpoint_url: str
    name: str

    @property
    def url(self) -> str:
        """``RELAY_STORAGE_URL`` for this bucket, under a prefix (as a deployment would)."""
        return f"s3://{self.name}/relay"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto logs every request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    bucket = Bucket(s3_endpoint, f"relay-{uuid.uuid4().hex[:12]}")
    httpx.put(f"{s3_endpoint}/{bucket.name}").raise_for_status()
    return bucket
