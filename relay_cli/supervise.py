"""Child processes for ``relay up``: start, label their output, stop them all cleanly.

Each child runs in its own session, so Ctrl-C reaches only ``relay up``, which then stops the
children in reverse order of start (SIGTERM, a grace period, then SIGKILL): nothing is left
behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO

COLOURS = {"redis": 31, "sim": 35, "worker": 33, "api": 32, "flower": 36, "relay": 1}


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    pump: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None


@dataclass
class Supervisor:
    children: list[Child] = field(default_factory=list)
    colour: bool = field(default_factory=sys.stderr.isatty)

    def label(self, name: str) -> str:
        text = f"{name:<6}|"
        if not self.colour:
            return text
        return f"\x1b[{COLOURS.get(name, 0)}m{text}\x1b[0m"

    def say(self, line: str) -> None:
        sys.stderr.write(f"{self.label('relay')} {line}\n")
        sys.stderr.flush()

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
        prefix = self.label(name)
        for raw in iter(stream.readline, b""):
            sys.stderr.write(f"{prefix} {raw.decode(errors='replace').rstrip()}\n")
        sys.stderr.flush()

    def dead(self) -> Child | None:
        return next((c for c in self.children if not c.alive), None)

    def stop_all(self, grace_s: float = 15.0) -> None:
        for child in reversed(self.children):
            if child.alive:
                _signal(child.proc, signal.SIGTERM)
                try:
                    child.proc.wait(grace_s)
                except subprocess.TimeoutExpired:
                    self.say(f"{child.name} did not stop in {grace_s:.0f} s; killing it")
                    _signal(child.proc, signal.SIGKILL)
                    child.proc.wait(5)
            if child.pump is not None:
                child.pump.join(2)


def _signal(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # the whole session: grandchildren too
        os.killpg(proc.pid, sig)
