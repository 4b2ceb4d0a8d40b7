"""Owner ids are keyed by a server secret: reading one does not let anyone test key guesses.

Real processes (the API and a worker, as ``relay api`` and ``relay worker``), a real Redis and
the simulator. The id shown in ``GET /v1/usage`` and used in Redis key names is an HMAC of the
gateway key under a secret kept in the data folder (0600, made on first start, the same after
a restart) or given as ``RELAY_OWNER_SECRET``; what earlier versions stored under the unkeyed
id is moved to the keyed one at start-up.
"""

from __future__ import annotations

import asyncio
import stat
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from redis.asyncio import Redis

from relay_core.batch.client.files import FileStore, new_file_id
from relay_core.batch.models import FilePurpose
from relay_core.batch.store.store import BatchStore, NewBatch
from relay_core.events import CallRecord
from relay_core.owners import KEPT_IN, legacy_owner_id, owner_id
from relay_core.settings import Settings
from relay_core.storage import open_storage
from relay_core.usage import UsageSink
from tests.integration.farm.conftest import four_providers
from tests.support.farm import (
    REDIS_URL,
    api_process,
    forget_prefix,
    make_settings,
    simulated,
    wait_api,
    worker_processes,
)

pytestmark = pytest.mark.integration

KEY = "sk-owner-test-0123456789abcdef"
CONFIGURED = "s" * 16 + "0123456789abcdef0123456789abcdef"


@contextmanager
def relay(tmp_path: Path, **overrides: Any) -> Iterator[tuple[Settings, str]]:
    """A simulator, one ``relay worker`` and one ``relay api`` process with gateway key KEY."""
    with simulated(tmp_path, four_providers) as (_, catalogue):
        settings = make_settings(
            catalogue,
            api_keys=KEY,
            data_dir=tmp_path / "data",
            storage_dir=tmp_path / "data" / "files",
            **overrides,
        )
        try:
            with worker_processes(settings, 1, 4), api_process(settings) as (_, url):
                yield settings, url
        finally:
            forget_prefix(redis.Redis.from_url(REDIS_URL), settings.key_prefix)


def client(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {KEY}"})


def usage_when(http: httpx.Client, requests: int) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        usage: dict[str, Any] = http.get("/v1/usage").json()
        if usage["totals"]["requests"] >= requests:
            return usage
        assert time.monotonic() < deadline, usage
        time.sleep(0.05)  # polling a condition, bounded by the deadline


async def store_as_earlier_versions_did(settings: Settings, owner: str) -> tuple[str, str]:
    """A file, a batch and a day of usage under ``owner``, written by Relay's own stores."""
    client = Redis.from_url(REDIS_URL)
    try:
        files = FileStore(client, settings.key_prefix, open_storage(settings))
        file_id = new_file_id()
        async with files.storage.open_write(file_id) as out:
            await out.write(b"{}\n")
        await files.register(
            file_id, owner=owner, filename="old.jsonl", purpose=FilePurpose.batch, size=3, lines=1
        )
        sink = UsageSink(client, settings.key_prefix, settings.usage_retention_days)
        record = CallRecord("p-openai", "p-openai-m", owner, "interactive", True, None, 0.1, 0.0)
        await sink.call_finished(record)
        await sink.aclose()
        new = NewBatch(owner, "/v1/chat/completions", file_id, "24h", 86400.0)
        batch = await BatchStore(client, settings.key_prefix).create(new)
        return file_id, batch.id
    finally:
        await client.aclose()


def test_owner_ids_are_an_hmac_under_a_kept_secret(tmp_path: Path) -> None:
    legacy = legacy_owner_id(KEY)
    prefix = f"rt{uuid.uuid4().hex[:10]}"
    # An earlier version's data, under the unkeyed id, before the upgrade starts.
    seed = make_settings(
        tmp_path / "relay.yaml", key_prefix=prefix, storage_dir=tmp_path / "data" / "files"
    )
    old_file, old_batch = asyncio.run(store_as_earlier_versions_did(seed, legacy))
    with relay(tmp_path, key_prefix=prefix) as (settings, url), client(url) as http:
        kept = settings.data_dir / KEPT_IN
        secret = kept.read_bytes().strip()
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600
        assert http.post(
            "/v1/chat/completions",
            json={"model": "chat", "messages": [{"role": "user", "content": "hi"}]},
        ).is_success
        usage = usage_when(http, 2)  # the earlier version's request, and this one
        files = {f["id"] for f in http.get("/v1/files").json()["data"]}
        batches = {b["id"] for b in http.get("/v1/batches").json()["data"]}
        assert http.get(f"/v1/batches/{old_batch}").status_code == 200
        assert http.get(f"/v1/files/{old_file}/content").content == b"{}\n"
        names = [k.decode() for k in redis.Redis.from_url(REDIS_URL).scan_iter(f"{prefix}*")]
    assert usage["owner"] == owner_id(secret, KEY) != legacy
    assert old_file in files and old_batch in batches  # moved to the keyed id: still theirs
    assert [n for n in names if usage["owner"] in n]
    assert not [n for n in names if legacy in n]
    # A restart keeps the secret, so the ids (and the tenant's data) stay.
    with relay(tmp_path, key_prefix=prefix) as (_, url), client(url) as http:
        again = http.get("/v1/usage").json()
    assert again["owner"] == usage["owner"]
    assert kept.read_bytes().strip() == secret


def test_a_configured_owner_secret_is_used_and_nothing_is_kept(tmp_path: Path) -> None:
    with relay(tmp_path, owner_secret=CONFIGURED) as (settings, url), client(url) as http:
        owner = http.get("/v1/usage").json()["owner"]
    assert owner == owner_id(CONFIGURED.encode(), KEY)
    assert not (settings.data_dir / KEPT_IN).exists()


def test_api_processes_starting_together_move_legacy_data_once(tmp_path: Path) -> None:
    prefix = f"rt{uuid.uuid4().hex[:10]}"
    with simulated(tmp_path, four_providers) as (_, catalogue):
        settings = make_settings(
            catalogue, api_keys=KEY, key_prefix=prefix, storage_dir=tmp_path / "data" / "files"
        )
        old_file, old_batch = asyncio.run(
            store_as_earlier_versions_did(settings, legacy_owner_id(KEY))
        )
        try:
            with ExitStack() as stack:
                started = [stack.enter_context(api_process(settings, wait=False)) for _ in range(2)]
                for proc, url in started:
                    wait_api(proc, url)
                seen = []
                for _, url in started:
                    with client(url) as http:
                        seen.append(
                            (
                                http.get("/v1/usage").json(),
                                [f["id"] for f in http.get("/v1/files").json()["data"]],
                                [b["id"] for b in http.get("/v1/batches").json()["data"]],
                            )
                        )
        finally:
            forget_prefix(redis.Redis.from_url(REDIS_URL), prefix)
    assert seen[0] == seen[1]
    usage, files, batches = seen[0]
    assert usage["totals"]["requests"] == 1  # moved once, not added twice
    assert files == [old_file] and batches == [old_batch]
