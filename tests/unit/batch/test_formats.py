"""Output lines, batch objects, completion windows and prompt files."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from relay_core.batch.client.prompts import build_jsonl, kind_of, route_counts
from relay_core.batch.models import BatchStatus
from relay_core.batch.run.outputs import dropped, failure, split, success
from relay_core.batch.run.window import window_seconds
from relay_core.batch.store.record import to_object
from relay_core.dispatch.envelope import Reply
from relay_core.errors import InvalidRequest, NoProviderAvailable, UpstreamBadRequest
from relay_core.routing.targets import Selection
from relay_core.schemas.chat import ChatCompletion


def test_a_success_is_an_openai_output_line() -> None:
    completion = ChatCompletion.model_validate({"id": "chatcmpl-up1", "model": "m", "choices": []})
    reply = Reply(id="r1", ok=True, completion=completion)
    is_output, line = split(success("q1", "batch_1:0:ab", reply))
    data = orjson.loads(line)
    assert is_output and set(data) == {"id", "custom_id", "response", "error"}
    assert data["id"].startswith("batch_req_") and data["custom_id"] == "q1"
    assert data["response"] == {
        "status_code": 200,
        "request_id": "batch_1:0:ab",
        "body": completion.model_dump(mode="json", exclude_none=True),
    }
    assert data["response"]["body"]["id"] == "chatcmpl-up1"  # the completion's own id
    assert data["error"] is None


def test_a_success_body_id_is_in_openais_chatcmpl_form() -> None:
    """An upstream id in another form (Mistral's bare hex, a server's own) becomes a fresh
    ``chatcmpl-…`` id, never Relay's line id (issue 14, item 8)."""
    for upstream_id in ("3f2a9c", None):
        body = {"model": "m", "choices": []} | ({} if upstream_id is None else {"id": upstream_id})
        reply = Reply(id="r1", ok=True, completion=ChatCompletion.model_validate(body))
        data = orjson.loads(split(success("q1", "batch_1:0:ab", reply))[1])
        assert data["response"]["body"]["id"].startswith("chatcmpl-")
        assert data["response"]["body"]["id"] != "chatcmpl-"


def test_a_refusal_keeps_the_providers_status_and_body() -> None:
    exc = UpstreamBadRequest(
        "bad", provider="p", upstream_status=422, upstream_body='{"error": {"message": "too long"}}'
    )
    is_output, line = split(failure("q", "req", exc.to_info()))
    data = orjson.loads(line)
    assert not is_output
    assert data["response"]["status_code"] == 422
    assert data["response"]["body"] == {"error": {"message": "too long"}}


def test_a_relay_failure_is_rendered_as_the_api_would() -> None:
    info = NoProviderAvailable("nobody could").to_info()
    data = orjson.loads(split(failure("q", "req", info))[1])
    assert data["response"]["status_code"] == 503
    assert data["response"]["body"]["error"]["code"] == "no_provider_available"


def test_lines_that_never_ran_have_an_error_and_no_response() -> None:
    data = orjson.loads(split(dropped("q", "batch_expired"))[1])
    assert data["response"] is None
    assert data["error"]["code"] == "batch_expired" and "window" in data["error"]["message"]


def test_the_batch_object_renders_from_its_hash() -> None:
    fields = {
        "id": "batch_1",
        "endpoint": "/v1/chat/completions",
        "input_file_id": "file-1",
        "completion_window": "24h",
        "status": "in_progress",
        "created_at": "100",
        "in_progress_at": "101",
        "expires_at": "86500",
        "total": "10",
        "completed": "4",
        "failed": "1",
        "input_tokens": "40",
        "output_tokens": "60",
        "metadata": '{"k": "v"}',
        "output_file_id": "",
    }
    obj = to_object(fields)
    assert obj.status is BatchStatus.in_progress
    assert obj.request_counts.model_dump() == {"total": 10, "completed": 4, "failed": 1}
    assert (obj.usage.input_tokens, obj.usage.total_tokens) == (40, 100)
    assert obj.metadata == {"k": "v"} and obj.output_file_id is None
    assert obj.in_progress_at == 101 and obj.completed_at is None
    assert obj.model_dump()["object"] == "batch"


@pytest.mark.parametrize(
    ("window", "seconds"), [("24h", 86400), ("2d", 172800), ("1440m", 86400), ("90000s", 90000)]
)
def test_windows_of_a_day_and_more(window: str, seconds: float) -> None:
    assert window_seconds(window, 86400) == seconds


@pytest.mark.parametrize("window", ["23h", "24", "h", "1 week", "31d"])
def test_other_windows_are_400s(window: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        window_seconds(window, 86400)
    assert info.value.param == "completion_window"


def test_text_and_csv_prompts_become_batch_lines(tmp_path: Path) -> None:
    text = tmp_path / "q.txt"
    text.write_text("first\n\n  \nsecond, with a comma\n")
    out = tmp_path / "out.jsonl"
    assert build_jsonl(text, out, "chat") == 2
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["custom_id"] for x in lines] == ["line-1", "line-4"]
    assert lines[1]["body"] == {
        "model": "chat",
        "messages": [{"role": "user", "content": "second, with a comma"}],
    }
    assert lines[0]["method"] == "POST" and lines[0]["url"] == "/v1/chat/completions"
    table = tmp_path / "q.csv"
    table.write_text('topic,prompt,id\nx,"Say ""hi""",A\ny,,B\nz,Bye,\n')
    assert build_jsonl(table, out, "m") == 2
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(r["custom_id"], r["body"]["messages"][0]["content"]) for r in rows] == [
        ("A", 'Say "hi"'),
        ("row-3", "Bye"),
    ]
    assert (kind_of(text), kind_of(table), kind_of(out)) == ("text", "csv", "jsonl")


def test_route_counts_per_model_selection(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    lines = [
        {"body": {"model": "a"}},
        {"body": {"model": "a"}},
        {"body": {}},
        {"body": {"model": "meta-model", "model_scale": "small"}},
        "not an object",
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n{broken\n")
    counts = route_counts(path, "dflt")
    assert counts == {
        Selection("a"): 2,
        Selection("dflt"): 1,
        Selection("meta-model", model_scale="small"): 1,
    }
