"""An invalid policy stops ``relay api`` and ``relay worker`` before they start, with the
problem named (exit status 2, nothing bound, no traceback)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CATALOGUE = """\
providers:
  - name: groq
    api: openai
    base_url: https://api.groq.com/openai/v1
    models: [{id: m}]
policies:
  - name: no-cohere
    exclude: {providers: [cohere]}
"""


@pytest.mark.parametrize("command", ["api", "worker"])
def test_an_invalid_policy_refuses_to_start(command: str, tmp_path: Path) -> None:
    config = tmp_path / "relay.yaml"
    config.write_text(CATALOGUE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    env |= {"RELAY_CONFIG": str(config), "RELAY_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [sys.executable, "-m", "relay_cli.main", command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "refusing to start: the catalogue is not valid" in done.stderr
    assert "policy 'no-cohere' → exclude.providers[0]: no provider 'cohere'" in done.stderr
    assert "Traceback" not in done.stderr
