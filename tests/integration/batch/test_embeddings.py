"""Batches of ``/v1/embeddings`` lines on a real farm: each line answered through the same
path as ``POST /v1/embeddings``, in OpenAI's batch output shape, with its own vector."""

from __future__ import annotations

from typing import Any

import pytest

from relay_sim.vectors import vector
from tests.integration.batch.conftest import BatchFarm, jsonl, read_lines, upload, wait_for
from tests.integration.farm.test_embeddings import embedding_providers

pytestmark = pytest.mark.integration


def embedding_line(custom_id: str, text: str | list[str], **body: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/embeddings",
        "body": {"model": "vec", "input": text, **body},
    }


def create_embeddings(http: Any, file_id: str) -> dict[str, Any]:
    r = http.post(
        "/v1/batches",
        json={"input_file_id": file_id, "endpoint": "/v1/embeddings", "completion_window": "24h"},
    )
    assert r.status_code == 200, r.text
    batch: dict[str, Any] = r.json()
    return batch


def test_a_batch_of_embeddings_lines(batch_farm: BatchFarm):
    farm = batch_farm(embedding_providers)
    texts = {f"line-{i}": f"text number {i}" for i in range(40)}
    lines = [embedding_line(cid, text) for cid, text in texts.items()]
    lines.append(embedding_line("pair", ["left", "right"], encoding_format="float"))
    with farm.client() as http:
        batch = create_embeddings(http, upload(http, jsonl(lines)))
        assert batch["endpoint"] == "/v1/embeddings"
        done = wait_for(http, batch["id"], timeout_s=60)
        assert done["status"] == "completed", done
        assert done["request_counts"] == {"total": 41, "completed": 41, "failed": 0}
        assert done["usage"]["input_tokens"] > 0
        out = read_lines(http, done["output_file_id"])
    by_id = {line["custom_id"]: line for line in out}
    assert set(by_id) == {*texts, "pair"}
    for cid, text in texts.items():
        response = by_id[cid]["response"]
        assert response["status_code"] == 200
        body = response["body"]
        assert body["object"] == "list"
        assert body["model"] in {"oa-embed", "ge-embed", "ol-embed"}  # never the 64-wide one
        assert body["data"][0]["embedding"] == vector(text, 32)
        assert by_id[cid]["error"] is None
    pair = by_id["pair"]["response"]["body"]["data"]
    assert [d["embedding"] for d in pair] == [vector("left", 32), vector("right", 32)]
    assert farm.sim_stats()["providers"]["e-wide"]["requests"] == 0


def test_an_embeddings_line_without_input_fails_validation(batch_farm: BatchFarm):
    farm = batch_farm(embedding_providers)
    lines = [embedding_line("ok", "fine"), embedding_line("empty", "")]
    with farm.client() as http:
        batch = create_embeddings(http, upload(http, jsonl(lines)))
        done = wait_for(http, batch["id"])
    assert done["status"] == "failed"
    errors = done["errors"]["data"]
    assert errors[0]["line"] == 2
    assert errors[0]["param"] == "body.input"
