"""A batch end to end with the farm's files in an S3 bucket (moto's server): the API streams
the upload to the bucket, a separate ``relay worker`` process (no folder shared with the API)
reads the lines by byte range and writes the output file as an upload, and the output comes
back through the API."""

from __future__ import annotations

import socket
from pathlib import Path

import obstore
import pytest

from relay_core.heartbeat import WorkerBeat
from relay_core.storage.marker import MARKER
from relay_core.storage.s3 import S3Storage
from tests.integration.batch.conftest import (
    BATCH_DEFAULTS,
    chat_line,
    create,
    jsonl,
    read_lines,
    upload,
    wait_for,
)
from tests.integration.farm.conftest import four_providers
from tests.support.farm import Farm, farm_factory
from tests.support.s3 import Bucket

pytestmark = pytest.mark.integration


def stored_names(bucket: Bucket) -> set[str]:
    store = S3Storage.from_url(bucket.url, bucket.endpoint_url).store
    listed = obstore.list(store).collect()
    return {meta["path"] for meta in listed} - {MARKER}


def worker_beats(farm: Farm) -> list[bytes | str]:
    keys = list(farm.redis.scan_iter(match=f"{farm.settings.key_prefix}:worker:*"))
    return [raw for raw in farm.redis.mget(keys) if raw is not None]


def test_a_batch_runs_with_its_files_in_s3(tmp_path: Path, s3_bucket: Bucket) -> None:
    folder = tmp_path / "files"
    settings = {
        **BATCH_DEFAULTS,
        "storage_dir": folder,  # named, so that the test sees nothing lands there
        "storage_url": s3_bucket.url,
        "s3_endpoint_url": s3_bucket.endpoint_url,
    }
    lines = [chat_line(f"s{i}", f"question {i}") for i in range(60)]
    with farm_factory(tmp_path, four_providers, **settings) as make:
        farm = make(workers=0, processes=1)
        beats = [WorkerBeat.model_validate_json(raw) for raw in worker_beats(farm)]
        with farm.client() as http:
            input_id = upload(http, jsonl(lines))
            assert stored_names(s3_bucket) == {input_id}
            batch = create(http, input_id)
            final = wait_for(http, batch["id"], timeout_s=60)
            out = read_lines(http, final["output_file_id"])
            results = http.get(f"/v1/batches/{batch['id']}/results")
            names = stored_names(s3_bucket)
            deleted = http.delete(f"/v1/files/{input_id}")
            after = stored_names(s3_bucket)
            output_after = http.get(f"/v1/files/{final['output_file_id']}/content")
    # The worker process was given only Redis, the catalogue and the storage settings; its
    # beat names its machine and the queues it serves (what `relay status` lists by host).
    assert [(b.host, sorted(b.providers)) for b in beats] == [
        (socket.gethostname(), sorted(p["name"] for p in four_providers(farm.sim_url)))
    ]
    assert final["status"] == "completed", final
    assert final["error_file_id"] is None
    assert sorted(o["custom_id"] for o in out) == sorted(f"s{i}" for i in range(60))
    assert all(o["response"]["status_code"] == 200 for o in out)
    assert results.status_code == 200 and len(results.text.splitlines()) == 60
    assert names == {input_id, final["output_file_id"]}
    assert deleted.status_code == 200 and after == {final["output_file_id"]}
    assert output_after.status_code == 200 and len(output_after.text.splitlines()) == 60
    assert not folder.exists()  # every byte went through the bucket
