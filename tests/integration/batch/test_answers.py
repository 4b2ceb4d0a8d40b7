"""Batches and answers (docs/answers.md): a line's repairs are part of its one record, and
a re-run of the same file is answered from the cache without a single upstream call."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.integration.batch.conftest import (
    BatchFarm,
    chat_line,
    create,
    jsonl,
    read_lines,
    upload,
    wait_for,
)
from tests.integration.farm.conftest import FAMILIES

pytestmark = pytest.mark.integration

FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "n",
        "schema": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
    },
}


def upstream_calls(farm: Any) -> int:
    return sum(p["requests"] for p in farm.sim_stats()["providers"].values())


def run(http: Any, file_id: str) -> dict[str, dict[str, Any]]:
    batch = wait_for(http, create(http, file_id)["id"])
    assert batch["status"] == "completed", batch
    assert batch["request_counts"]["failed"] == 0, read_lines(http, batch["error_file_id"])
    return {line["custom_id"]: line for line in read_lines(http, batch["output_file_id"])}


def test_a_rerun_is_answered_from_the_cache_and_repairs_are_in_the_record(
    batch_farm: BatchFarm,
) -> None:
    farm = batch_farm()
    for name, _ in FAMILIES:  # each provider's first JSON answer is prose
        farm.sim(name, invalid_json_first=1)
    lines = [chat_line(f"d{i}", f"question {i}", temperature=0) for i in range(12)]
    lines.append(chat_line("json", "a number", temperature=0, response_format=FORMAT))
    lines.append(chat_line("free", "a story"))  # not deterministic: never cached
    with farm.client() as http:
        file_id = upload(http, jsonl(lines))
        first = run(http, file_id)
        calls = upstream_calls(farm)
        second = run(http, file_id)
        again = upstream_calls(farm)
    assert len(first) == len(second) == len(lines)
    # The JSON line was repaired once; its one record says so.
    checks = first["json"]["relay"]["answer_checks"]
    assert [c["action"] for c in checks] == ["repair", "delivered"]
    assert checks[0]["provider"] == checks[1]["provider"] and not checks[0]["valid"]
    body = first["json"]["response"]["body"]
    assert set(orjson.loads(body["choices"][0]["message"]["content"])) == {"n"}
    assert calls == len(lines) + 1  # one call per line, and the repair
    # The re-run: only the line that is not deterministic went upstream.
    assert again - calls == 1
    for custom_id, line in second.items():
        if custom_id == "free":
            assert "relay" not in line or "cache" not in line["relay"]
            continue
        assert line["relay"]["cache"] == "hit", custom_id
        answer = line["response"]["body"]["choices"]
        assert answer == first[custom_id]["response"]["body"]["choices"], custom_id
