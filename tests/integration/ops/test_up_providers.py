"""``relay up`` with the README's configure step (a catalogue, no keys): it says per provider
whether it is on and why, probes the enabled ones, and warns loudly when none answers — the
farm that would otherwise fail every request with a 503 and say nothing."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import yaml

from tests.integration.ops.test_up_e2e import clean_env, start_up
from tests.support.servers import free_port

pytestmark = pytest.mark.integration


def catalogue(ollama_port: int) -> dict[str, object]:
    model = {"id": "m", "type": ["text"]}
    return {
        "version": 1,
        "providers": [
            {
                "name": "groq",
                "api": "openai",
                "base_url": "https://api.groq.com/openai/v1",
                "api_key_env": "GROQ_API_KEY",
                "models": [model],
            },
            {
                "name": "ollama",
                "api": "ollama",
                "base_url": f"http://127.0.0.1:{ollama_port}",
                "models": [model],
            },
        ],
    }


def test_start_says_what_is_enabled_and_warns_when_nothing_answers(tmp_path: Path) -> None:
    ollama = free_port()  # nothing listens there: "Ollama is not running"
    (tmp_path / "relay.yaml").write_text(yaml.safe_dump(catalogue(ollama)))
    env = clean_env(tmp_path / "data")
    proc, info, log = start_up(tmp_path, env)
    try:
        assert not info.demo and info.config == str(tmp_path / "relay.yaml")
        deadline = time.monotonic() + 30
        while "Press Ctrl-C to stop." not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)  # the banner follows readiness; bounded by the deadline
        text = log.read_text()
        lines = [line.split("|", 1)[-1].strip() for line in text.splitlines()]
        assert "providers: 1 of 2 enabled in relay.yaml (in the working directory)" in lines
        assert "groq: disabled (GROQ_API_KEY is not set)" in lines
        down = f"ollama: enabled, http://127.0.0.1:{ollama} unreachable (connection refused)"
        assert down in lines
        warning = (
            f"WARNING: no enabled provider is reachable (ollama at http://127.0.0.1:{ollama}):"
        )
        assert warning in lines
        # It is the last thing said, after the banner.
        assert lines.index(warning) > lines.index("Press Ctrl-C to stop.")
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0, log.read_text()
