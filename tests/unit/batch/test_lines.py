"""Checking one batch line, and the whole-file scan that indexes a batch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from relay_core.batch.client.validate import MAX_ERRORS, scan_file
from relay_core.batch.lines import LineRef, check_line, request_body
from relay_core.batch.models import BatchError, Endpoint
from relay_core.errors import InvalidRequest, ModelNotFound
from relay_core.routing.targets import Selection

CHAT = Endpoint.chat


def line(custom_id: str = "a", **body: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "m", "messages": [{"role": "user", "content": "hi"}], **body},
    }


def raw(data: object) -> bytes:
    return json.dumps(data).encode()


def test_a_valid_line_gives_its_custom_id_and_route() -> None:
    checked = check_line(raw(line("q1", model_name="llama", model_scale="small")), 1, CHAT, None)
    assert not isinstance(checked, BatchError)
    assert checked.custom_id == "q1"
    assert checked.route == Selection("m", None, "small", "llama")


@pytest.mark.parametrize(
    ("data", "code", "param"),
    [
        (b"{nope", "invalid_json_line", None),
        (b'"a string"', "invalid_json_line", None),
        (raw({**line(), "custom_id": 7}), "missing_required_parameter", "custom_id"),
        (raw({**line(), "custom_id": "x" * 513}), "invalid_custom_id", "custom_id"),
        (raw({**line(), "method": "post"}), "invalid_method", "method"),
        (raw({**line(), "url": "/v1/chat/completions/"}), "invalid_url", "url"),
        (raw({**line(), "body": []}), "invalid_request", "body"),
        (raw(line(model="")), "missing_required_parameter", "body.model"),
        (raw(line(messages=[])), "invalid_request", "body.messages"),
        (raw(line(messages=[{"role": "robot"}])), "invalid_request", "body.messages.0.role"),
        (raw(line(top_p=2)), "invalid_request", "body.top_p"),
        (raw(line(stream=True)), "invalid_request", "body.stream"),
    ],
)
def test_each_bad_line_names_its_code_line_and_param(
    data: bytes, code: str, param: str | None
) -> None:
    problem = check_line(data, 7, CHAT, None)
    assert isinstance(problem, BatchError)
    assert (problem.code, problem.line, problem.param) == (code, 7, param)
    assert problem.message.startswith("Line 7")


def test_the_default_model_fills_lines_without_one() -> None:
    data = line()
    del data["body"]["model"]
    checked = check_line(raw(data), 1, CHAT, "fallback")
    assert not isinstance(checked, BatchError) and checked.route.model == "fallback"
    assert request_body(data, "fallback")["model"] == "fallback"
    assert request_body(line(), "fallback")["model"] == "m"  # a line's own model wins


def test_line_refs_round_trip_custom_ids_with_spaces() -> None:
    ref = LineRef(offset=123, length=45, route=2, custom_id="my id with spaces")
    assert LineRef.decode(ref.encode().encode()) == ref


def _known(route: Selection) -> None:
    if route.model == "unknown":
        raise ModelNotFound("The model 'unknown' does not exist.", param="model")
    if route.model_name == "nothing":
        raise InvalidRequest("No model matches.", param="model_name")


def write(tmp_path: Path, *lines: bytes) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"".join(lines))
    return path


def test_scan_indexes_lines_by_byte_offset(tmp_path: Path) -> None:
    a, b = raw(line("a")) + b"\n", raw(line("b", model="other")) + b"\n"
    c = raw(line("c"))  # no final newline
    path = write(tmp_path, a, b"\n  \n", b, c)
    scan = scan_file(path.open("rb"), CHAT, max_lines=10, check_route=_known)
    assert scan.errors == []
    assert scan.routes == [Selection("m"), Selection("other")]
    data = path.read_bytes()
    assert [(r.custom_id, r.route) for r in scan.refs] == [("a", 0), ("b", 1), ("c", 0)]
    for ref in scan.refs:
        assert json.loads(data[ref.offset : ref.offset + ref.length])["custom_id"] == ref.custom_id


def test_scan_reports_duplicates_and_models_with_their_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        raw(line("a")) + b"\n",
        raw(line("a")) + b"\n",
        raw(line("u", model="unknown")) + b"\n",
        raw(line("n", model_name="nothing")) + b"\n",
    )
    scan = scan_file(path.open("rb"), CHAT, max_lines=10, check_route=_known)
    assert [(e.code, e.line, e.param) for e in scan.errors] == [
        ("duplicate_custom_id", 2, "custom_id"),
        ("model_not_found", 3, "body.model"),
        ("invalid_request", 4, "body.model_name"),
    ]


def test_scan_stops_at_the_line_cap_and_after_enough_errors(tmp_path: Path) -> None:
    path = write(tmp_path, *(raw(line(f"l{i}")) + b"\n" for i in range(5)))
    capped = scan_file(path.open("rb"), CHAT, max_lines=3, check_route=_known)
    assert [(e.code, e.line) for e in capped.errors] == [("too_many_requests", 4)]
    many = write(tmp_path, *(b"{bad\n" for _ in range(MAX_ERRORS + 50)))
    assert (
        len(scan_file(many.open("rb"), CHAT, max_lines=10**6, check_route=_known).errors)
        == MAX_ERRORS
    )


def test_an_empty_file_is_an_error(tmp_path: Path) -> None:
    scan = scan_file(write(tmp_path, b"\n\n").open("rb"), CHAT, max_lines=10, check_route=_known)
    assert [e.code for e in scan.errors] == ["empty_file"]


def test_a_line_over_the_size_cap_is_refused_unparsed(tmp_path: Path) -> None:
    small = raw(line("a")) + b"\n"
    big = raw(line("b", user="x" * 500)) + b"\n"
    path = write(
        tmp_path, small, big, b"{not json, but too long anyway" + b" " * 400 + b"\n", small
    )
    scan = scan_file(
        path.open("rb"), CHAT, max_lines=10, check_route=_known, max_line_bytes=len(small)
    )
    assert [(e.code, e.line, e.param) for e in scan.errors] == [
        ("invalid_request", 2, None),
        ("invalid_request", 3, None),  # by its size alone: never parsed
        ("duplicate_custom_id", 4, "custom_id"),  # the scan went on after them
    ]
    assert scan.errors[0].message == (
        f"Line 2 is longer than the {len(small):,} bytes a batch line may hold "
        "(RELAY_BATCH_MAX_LINE_BYTES)."
    )
    assert [r.custom_id for r in scan.refs] == ["a"]
