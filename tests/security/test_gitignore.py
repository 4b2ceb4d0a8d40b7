"""The files a user writes while following the README — the catalogue ``relay.yaml`` (at the
root, or in ``deploy/config/`` for compose) and ``.env`` with gateway and provider keys — are
git-ignored, so ``git add .`` cannot commit them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", ["relay.yaml", ".env", "deploy/config/relay.yaml"])
def test_user_configuration_and_secrets_are_git_ignored(path: str) -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", "-q", path], cwd=ROOT, check=False
    )
    assert ignored.returncode == 0, f"{path} is not git-ignored (.gitignore)"


def test_the_example_catalogue_is_not_ignored() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    check = ["git", "check-ignore", "--no-index", "-q", "relay.example.yaml"]
    assert subprocess.run(check, cwd=ROOT, check=False).returncode == 1
