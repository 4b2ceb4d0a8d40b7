"""The official openai SDK drives the whole batch flow against a real farm, unchanged."""

from __future__ import annotations

import json
import time

import openai
import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletion

from tests.integration.batch.conftest import TERMINAL, BatchFarm, chat_line, jsonl

pytestmark = pytest.mark.integration


def test_upload_create_poll_download_with_the_official_sdk(batch_farm: BatchFarm) -> None:
    farm = batch_farm(concurrency=32)
    client = OpenAI(base_url=f"{farm.url}/v1", api_key="unused", max_retries=0)
    # Mixed models in one file: an alias several providers serve, a pinned provider/model,
    # and the meta-model narrowed by model_name.
    selections = [
        {"model": "chat"},
        {"model": "p-gemini/p-gemini-m"},
        {"model": "meta-model", "model_name": "claude"},
    ]
    lines = [chat_line(f"req-{i}", f"question {i}", **selections[i % 3]) for i in range(90)]
    uploaded = client.files.create(file=("questions.jsonl", jsonl(lines)), purpose="batch")
    assert uploaded.purpose == "batch" and uploaded.bytes == len(jsonl(lines))
    batch = client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"project": "sdk-test"},
    )
    assert batch.status == "validating" and batch.metadata == {"project": "sdk-test"}
    deadline = time.monotonic() + 30
    while batch.status not in TERMINAL:
        assert time.monotonic() < deadline, batch
        time.sleep(0.1)
        batch = client.batches.retrieve(batch.id)
    assert batch.status == "completed", batch.errors
    assert batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed) == (90, 90)
    assert batch.request_counts.failed == 0 and batch.error_file_id is None
    assert batch.in_progress_at and batch.finalizing_at and batch.completed_at
    assert batch.usage is not None and batch.usage.total_tokens > 0
    assert batch.output_file_id is not None
    out = [json.loads(x) for x in client.files.content(batch.output_file_id).text.splitlines()]
    # Every custom_id exactly once, in input order, each with its own answer.
    assert [o["custom_id"] for o in out] == [f"req-{i}" for i in range(90)]
    for i, o in enumerate(out):
        assert o["error"] is None and o["response"]["status_code"] == 200
        body = o["response"]["body"]
        assert body["object"] == "chat.completion"
        assert body["choices"][0]["message"]["content"].endswith(f": question {i}")
        # OpenAI's line shape (issue 14, item 8): batch_req_ line ids, chatcmpl- body ids,
        # and the nulls OpenAI sends (logprobs, refusal) kept.
        assert o["id"].startswith("batch_req_") and o["response"]["request_id"]
        assert body["id"].startswith("chatcmpl-"), body["id"]
        assert body["choices"][0]["logprobs"] is None
        assert body["choices"][0]["message"]["refusal"] is None
        assert ChatCompletion.model_validate(body).choices[0].message.content
    assert len({o["id"] for o in out}) == len({o["response"]["body"]["id"] for o in out}) == 90
    served = {o["response"]["body"]["model"] for o in out}
    assert {o["response"]["body"]["model"] for o in out[1::3]} == {"p-gemini-m"}
    assert {o["response"]["body"]["model"] for o in out[2::3]} == {"p-claude-m"}
    assert len(served) == 4  # "chat" lines were spread over all four providers
    listed = client.batches.list(limit=10)
    assert [b.id for b in listed.data] == [batch.id]
    assert client.files.retrieve(uploaded.id).filename == "questions.jsonl"


def test_files_list_retrieve_delete(batch_farm: BatchFarm) -> None:
    farm = batch_farm()
    client = OpenAI(base_url=f"{farm.url}/v1", api_key="unused", max_retries=0)
    ids = [
        client.files.create(file=(f"f{i}.jsonl", b'{"a": 1}\n'), purpose="batch").id
        for i in range(3)
    ]
    listed = client.files.list(limit=2)
    assert [f.id for f in listed.data] == ids[::-1][:2] and listed.has_more
    rest = client.files.list(limit=2, after=listed.data[-1].id)
    assert [f.id for f in rest.data] == [ids[0]] and not rest.has_more
    assert client.files.content(ids[1]).content == b'{"a": 1}\n'
    deleted = client.files.delete(ids[1])
    assert deleted.deleted and deleted.id == ids[1]
    with pytest.raises(openai.NotFoundError, match="No such File"):
        client.files.retrieve(ids[1])
    assert [f.id for f in client.files.list().data] == [ids[2], ids[0]]
