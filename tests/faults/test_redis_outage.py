"""Redis is down: every request that needs it gets a 503 with ``Retry-After`` (which OpenAI's
SDKs retry), not a 500; ``/ready`` says Redis is unreachable; once Redis is back, so is the
service."""

from __future__ import annotations

import httpx
import pytest

from tests.faults.conftest import FaultFactory
from tests.integration.batch.conftest import chat_line, create, jsonl, upload

pytestmark = pytest.mark.integration

CHAT = {"model": "chat", "messages": [{"role": "user", "content": "anyone there?"}]}


def needs_redis(http: httpx.Client, file_id: str, batch_id: str) -> dict[str, httpx.Response]:
    """One request of each kind that reads or writes Redis."""
    batch = {"input_file_id": file_id, "endpoint": "/v1/chat/completions"}
    return {
        "chat": http.post("/v1/chat/completions", json=CHAT),
        "stream": http.post("/v1/chat/completions", json={**CHAT, "stream": True}),
        "upload": http.post(
            "/v1/files",
            files={"file": ("b.jsonl", jsonl([chat_line("a", "x")]))},
            data={"purpose": "batch"},
        ),
        "files": http.get("/v1/files"),
        "file": http.get(f"/v1/files/{file_id}"),
        "batches": http.get("/v1/batches"),
        "batch": http.get(f"/v1/batches/{batch_id}"),
        "create batch": http.post("/v1/batches", json={**batch, "completion_window": "24h"}),
        "usage": http.get("/v1/usage"),
    }


def test_a_redis_outage_is_a_503_with_retry_after_and_service_resumes(
    fault_farm: FaultFactory,
) -> None:
    farm = fault_farm(private_redis=True)
    assert farm.redis_server is not None
    with farm.client() as http:
        file_id = upload(http, jsonl([chat_line("a", "question a")]))
        batch_id = create(http, file_id)["id"]
        farm.redis_server.kill()

        answers = needs_redis(http, file_id, batch_id)
        for what, r in answers.items():
            assert r.status_code == 503, (what, r.status_code, r.text)
            assert int(r.headers["retry-after"]) >= 1, what
            error = r.json()["error"]
            assert error["code"] == "redis_unavailable", (what, error)
            assert error["type"] == "server_error", (what, error)
            assert "Redis" in error["message"], (what, error)
        ready = http.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["redis"].startswith("unreachable")
        assert http.get("/health").json()["redis"] == "unreachable"

        farm.redis_server.start()
        answers = needs_redis(http, file_id, batch_id)
        for what, r in answers.items():
            assert r.status_code == 200, (what, r.status_code, r.text)
        assert (
            answers["chat"].json()["choices"][0]["message"]["content"].endswith(": anyone there?")
        )
        assert http.get("/health").json()["redis"] == "ok"
