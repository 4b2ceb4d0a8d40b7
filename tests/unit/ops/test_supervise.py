"""``relay up``'s supervisor: labelled and redacted output, JSON lines, nothing left behind."""

from __future__ import annotations

import io
import json
import os
import sys
import time
from pathlib import Path

from relay_cli.logs import RedactingFilter, secret_values
from relay_cli.supervise import Supervisor

SECRET = "sk-live-0123456789abcdef"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def supervisor(fmt: str = "text", log_dir: Path | None = None) -> tuple[Supervisor, io.StringIO]:
    out = io.StringIO()
    sup = Supervisor(
        log_format=fmt,
        log_dir=log_dir,
        out=out,
        colour=False,
        redactor=RedactingFilter([SECRET]),
    )
    return sup, out


def finish(sup: Supervisor) -> None:
    for child in sup.children:
        child.proc.wait(10)
        assert child.pump is not None
        child.pump.join(5)


def test_output_is_labelled_redacted_and_kept_per_component(tmp_path: Path) -> None:
    sup, out = supervisor(log_dir=tmp_path)
    code = (
        f"print('key {SECRET} in use'); print('redis://:hunter2secret@h:6379/0'); "
        "print('Authorization: Bearer abcdefghijkl')"
    )
    sup.start("api", py(code), dict(os.environ))
    finish(sup)
    lines = out.getvalue().splitlines()
    assert lines == [
        "api   | key *** in use",
        "api   | redis://:***@h:6379/0",
        "api   | Authorization: Bearer ***",
    ]
    assert (tmp_path / "api.log").read_text().splitlines() == [
        line.removeprefix("api   | ") for line in lines
    ]


def test_json_format_wraps_foreign_lines_and_keeps_json_ones() -> None:
    sup, out = supervisor("json")
    own = json.dumps({"level": "info", "message": "ready", "logger": "relay.api"})
    sup.start("worker", py(f"print('plain text'); print({own!r})"), dict(os.environ))
    finish(sup)
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["component"] == "worker"
    assert first["message"] == "plain text"
    assert second == {**json.loads(own), "component": "worker"}


def test_stop_all_stops_children_and_their_children() -> None:
    sup, _out = supervisor()
    # A child that ignores SIGTERM and has a grandchild of its own.
    code = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(g.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    stubborn = sup.start("stubborn", py(code), dict(os.environ))
    polite = sup.start("polite", py("import time; print('up', flush=True); time.sleep(60)"), {})
    assert stubborn.proc.stdout is not None
    deadline = time.monotonic() + 10
    while not Path(f"/proc/{polite.pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    sup.stop_all(grace_s=0.5)
    assert time.monotonic() - started < 8
    assert not stubborn.alive and not polite.alive
    # The grandchild was in the stubborn child's process group: gone too.
    for pid in _group_members(stubborn.pid):
        assert not pid_alive(pid)


def _group_members(pgid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid:
                found.append(int(entry.name))
    return found


def test_secret_values_skip_names_that_hold_no_secret() -> None:
    env = {
        "GROQ_API_KEY": "gsk_abcdef123456",
        "RELAY_FLOWER_PASSWORD": "s3cret-pass",
        "RELAY_KEY_PREFIX": "mycompany",
        "FLOWER_BASIC_AUTH": "relay:s3cret-pass",
        "HOME": "/root/with/a/long/path",
        "SHORT_TOKEN": "abc",
    }
    assert sorted(secret_values(env)) == sorted(
        ["gsk_abcdef123456", "s3cret-pass", "relay:s3cret-pass", "abc"]  # short ones too
    )
