"""``relay batch submit`` / ``estimate`` refuse a file that is not UTF-8 with a clear message
(the file, the byte offset, what it must be) and exit 1 — never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay_cli.main import main

NOWHERE = "http://127.0.0.1:9"  # never reached: the file is refused before anything is sent


@pytest.mark.parametrize(
    ("name", "data", "offset", "line", "must"),
    [
        ("prompts.txt", "café au lait\n".encode("latin-1"), 3, 1, "must be UTF-8 text"),
        (
            "batch.jsonl",
            b'{"custom_id": "a"}\n{"custom_id": "caf\xe9"}\n',
            19 + 18,
            2,
            "a batch file must be UTF-8 JSONL",
        ),
        ("q.csv", b"prompt\nna\xefve\n", 9, 2, "a CSV of prompts must be UTF-8"),
    ],
)
def test_a_file_that_is_not_utf8_is_refused_clearly(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    data: bytes,
    offset: int,
    line: int,
    must: str,
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    for action in ("submit", "estimate"):
        assert main(["batch", "--base-url", NOWHERE, action, str(path)]) == 1
        err = " ".join(capsys.readouterr().err.split())
        assert f"{path} is not UTF-8" in err
        assert f"at offset {offset} (line {line})" in err and must in err
        assert "iconv" in err and "Traceback" not in err


def test_a_utf16_export_is_refused_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "export.txt"
    path.write_bytes("hello\n".encode("utf-16"))  # starts with the BOM ff fe
    assert main(["batch", "--base-url", NOWHERE, "submit", str(path)]) == 1
    assert "byte 0xff at offset 0 (line 1)" in capsys.readouterr().err


def test_a_missing_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["batch", "--base-url", NOWHERE, "submit", str(tmp_path / "nope.txt")]) == 1
    assert "nope.txt: no such file" in capsys.readouterr().err
