"""``relay batch``: a researcher's commands against a real farm."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from relay_cli.main import main
from tests.integration.batch.conftest import TERMINAL, BatchFarm, chat_line, jsonl

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


def relay(farm, *argv: str) -> int:
    return main(["batch", "--base-url", farm.url, *argv])


def test_submit_prompts_wait_and_write_results(
    batch_farm: BatchFarm, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    farm = batch_farm()
    prompts = tmp_path / "questions.txt"
    prompts.write_text("What is 1+1?\n\nName a colour.\nWhy is the sky blue?\n")
    out, err = tmp_path / "results.jsonl", tmp_path / "errors.jsonl"
    code = relay(
        farm,
        "submit",
        str(prompts),
        "--model",
        "chat",
        "--wait",
        "--output",
        str(out),
        "--errors",
        str(err),
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "built 3 requests" in printed and "completed" in printed
    # Not a terminal: plain progress lines (no live bar cut to 80 columns), and the summary
    # on a line of its own.
    shown = printed.splitlines()
    batch_id = shown[1].split()[1]
    assert f"{batch_id} completed: 3/3 done, 0 failed" in printed
    assert f"batch {batch_id}: completed — 3 done, 0 failed of 3" in shown
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["custom_id"] for x in lines] == ["line-1", "line-3", "line-4"]
    answers = [x["response"]["body"]["choices"][0]["message"]["content"] for x in lines]
    assert answers[0].endswith(": What is 1+1?") and answers[2].endswith("sky blue?")
    assert err.read_text() == ""


def test_csv_estimate_list_status_cancel_results_retry(
    batch_farm: BatchFarm, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    farm = batch_farm()
    table = tmp_path / "q.csv"
    table.write_text('id,prompt\na1,"Hello, there"\na2,Second\n')
    assert relay(farm, "estimate", str(table)) == 0
    estimate = capsys.readouterr().out
    assert "2 requests at" in estimate and "p-openai" in estimate
    assert relay(farm, "submit", str(table), "--wait") == 0
    submitted = capsys.readouterr().out
    batch_id = submitted.split("batch ")[1].split()[0]
    assert relay(farm, "list") == 0
    assert batch_id in capsys.readouterr().out
    assert relay(farm, "status", batch_id) == 0
    assert "completed" in capsys.readouterr().out
    assert relay(farm, "cancel", batch_id) == 1  # too late: it is completed
    assert "can no longer be cancelled" in capsys.readouterr().out
    out = tmp_path / "r.jsonl"
    assert (
        relay(
            farm, "results", batch_id, "--output", str(out), "--errors", str(tmp_path / "e.jsonl")
        )
        == 0
    )
    assert [json.loads(x)["custom_id"] for x in out.read_text().splitlines()] == ["a1", "a2"]
    assert relay(farm, "retry", batch_id) == 1  # nothing failed
    assert "no failed lines" in capsys.readouterr().out


def test_jsonl_with_a_default_model(batch_farm: BatchFarm, tmp_path: Path) -> None:
    farm = batch_farm()
    line = chat_line("x", "hi")
    del line["body"]["model"]
    source = tmp_path / "b.jsonl"
    source.write_bytes(jsonl([line]))
    out = tmp_path / "out.jsonl"
    code = relay(
        farm,
        "submit",
        str(source),
        "--model",
        "p-claude/p-claude-m",
        "--wait",
        "--output",
        str(out),
    )
    assert code == 0
    (answer,) = [json.loads(x) for x in out.read_text().splitlines()]
    assert answer["response"]["body"]["model"] == "p-claude-m"


def test_ctrl_c_while_waiting_leaves_the_batch_running_and_says_how_to_follow_it(
    batch_farm: BatchFarm, tmp_path: Path
) -> None:
    farm = batch_farm(workers=0)  # no worker: the batch cannot finish while we wait
    prompts = tmp_path / "questions.txt"
    prompts.write_text("What is 1+1?\nName a colour.\n")
    out = tmp_path / "results.jsonl"
    argv = ["batch", "--base-url", farm.url, "submit", str(prompts), "--model", "chat"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "relay_cli.main", *argv, "--wait", "--output", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # until the first progress line: it is waiting now
        seen.append(line)
        if "done," in line:
            break
    batch_id = next(ln.split()[1] for ln in seen if ln.startswith("batch "))
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, "".join(seen) + rest + err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert f"Batch {batch_id} keeps running on the farm" in err
    follow = f"relay batch --base-url {farm.url} wait {batch_id} --output {out}"
    assert f"\n  {follow}\n" in err
    assert f"relay batch --base-url {farm.url} cancel {batch_id}" in err
    batch = httpx.get(f"{farm.url}/v1/batches/{batch_id}").json()
    assert batch["status"] not in TERMINAL  # Ctrl-C stopped the command, not the batch
