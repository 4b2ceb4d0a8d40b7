"""Child processes for ``relay up``: start, label their output, stop them all cleanly.

Each child runs in its own session (and so its own process group), so Ctrl-C reaches only
``relay up``, which then stops the children in reverse order of start: SIGTERM to the whole
group, a grace period, then SIGKILL. A second Ctrl-C while stopping kills what is left at once.
Nothing is left behind.

Every line a child prints is redacted (secret values from the environment, passwords in URLs,
bearer tokens), labelled with the component and written to the terminal — as is, or as one
JSON object per line with ``--log-format json`` — and to ``{data_dir}/logs/{component}.log``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TextIO

from relay_cli.logs import RedactingFilter, json_line, secret_values

COLOURS = {"redis": 31, "sim": 35, "worker": 33, "api": 32, "flower": 36, "relay": 1}


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    pump: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    @property
    def pid(self) -> int:
        return self.proc.pid


@dataclass
class Supervisor:
    log_format: str = "text"
    log_dir: Path | None = None
    out: TextIO = field(default_factory=lambda: sys.stderr)
    colour: bool = field(default_factory=sys.stderr.isatty)
    children: list[Child] = field(default_factory=list)
    redactor: RedactingFilter = field(default_factory=lambda: RedactingFilter(secret_values()))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def label(self, name: str) -> str:
        text = f"{name:<6}|"
        if not self.colour:
            return text
        return f"\x1b[{COLOURS.get(name, 0)}m{text}\x1b[0m"

    def emit(self, name: str, line: str, file: IO[str] | None = None) -> None:
        """Write one line of ``name``'s output (redacted) to the terminal and its log file."""
        line = self.redactor.redact(line.rstrip())
        json_out = self.log_format == "json"
        shown = _as_json(name, line) if json_out else f"{self.label(name)} {line}"
        with self._lock:
            self.out.write(shown + "\n")
            self.out.flush()
        if file is not None:
            file.write(line + "\n")
            file.flush()

    def say(self, line: str) -> None:
        self.emit("relay", line)

    def start(self, name: str, argv: Sequence[str], env: dict[str, str]) -> Child:
        proc = subprocess.Popen(
            list(argv),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        child = Child(name, proc)
        assert proc.stdout is not None
        child.pump = threading.Thread(
            target=self._pump, args=(name, proc.stdout), daemon=True, name=f"pump-{name}"
        )
        child.pump.start()
        self.children.append(child)
        return child

    def _pump(self, name: str, stream: IO[bytes]) -> None:
        with contextlib.ExitStack() as stack:
            stack.enter_context(stream)
            file: IO[str] | None = None
            if self.log_dir is not None:
                self.log_dir.mkdir(parents=True, exist_ok=True)
                file = stack.enter_context((self.log_dir / f"{name}.log").open("w"))
            for raw in iter(stream.readline, b""):
                self.emit(name, raw.decode(errors="replace"), file)

    def dead(self) -> Child | None:
        return next((c for c in self.children if not c.alive), None)

    def stop_all(self, grace_s: float = 30.0) -> None:
        """Stop every child, last started first; a second interrupt kills the rest at once."""
        try:
            for child in reversed(self.children):
                self._stop(child, grace_s)
        except KeyboardInterrupt:
            self.say("interrupted again: killing what is left")
            self.kill_all()
        for child in self.children:
            if child.pump is not None:
                child.pump.join(2)

    def _stop(self, child: Child, grace_s: float) -> None:
        if child.alive:
            signal_group(child.pid, signal.SIGTERM)
            try:
                child.proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.say(f"{child.name} did not stop in {grace_s:.0f} s; killing it")
        # The group too: a child may have left a grandchild (Redis's AOF rewrite forks one).
        signal_group(child.pid, signal.SIGKILL)
        child.proc.wait(5)

    def kill_all(self) -> None:
        for child in self.children:
            signal_group(child.pid, signal.SIGKILL)
        for child in self.children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(5)


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Signal a whole process group (a child started in its own session leads one)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _as_json(name: str, line: str) -> str:
    """A child's line as one JSON object: its own when it wrote JSON, else wrapped."""
    if line.startswith("{"):
        with contextlib.suppress(ValueError):
            data = json.loads(line)
            if isinstance(data, dict):
                data.setdefault("component", name)
                return json.dumps(data)
    return json_line(name, line)
