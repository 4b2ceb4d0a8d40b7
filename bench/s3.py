"""An S3-protocol server for benchmarks (moto's, in a thread): the ``RELAY_*`` and ``AWS_*``
variables that point a farm's file storage at a fresh bucket on it."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from moto.server import ThreadedMotoServer


@contextmanager
def s3_storage_env() -> Iterator[dict[str, str]]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint, bucket = f"http://{host}:{port}", f"bench-{uuid.uuid4().hex[:8]}"
    try:
        httpx.put(f"{endpoint}/{bucket}").raise_for_status()
        yield {
            "RELAY_STORAGE_URL": f"s3://{bucket}/relay",
            "RELAY_S3_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench-secret",
            "AWS_REGION": "us-east-1",
        }
    finally:
        server.stop()
