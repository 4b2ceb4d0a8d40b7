"""The owner secret kept under the data folder, and the owner ids derived from it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from relay_core.owners import (
    KEPT_IN,
    OwnerSecretError,
    kept_secret,
    legacy_owner_id,
    owner_id,
    owner_secret,
)
from relay_core.settings import Settings


def test_a_secret_is_made_once_with_owner_only_permissions(tmp_path: Path) -> None:
    path = tmp_path / "deep" / KEPT_IN
    first = kept_secret(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert kept_secret(path) == first and len(first) == 64
    assert list(path.parent.iterdir()) == [path]  # no draft left behind
    assert owner_secret(Settings(data_dir=tmp_path / "deep")) == first


def test_a_secret_file_readable_by_others_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / KEPT_IN
    path.write_text("x" * 40)
    path.chmod(0o644)
    assert kept_secret(path) == b"x" * 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_kept_secret_too_short_is_refused_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / KEPT_IN
    path.write_text("short")
    with pytest.raises(OwnerSecretError, match="delete it"):
        kept_secret(path)


def test_a_configured_secret_wins_and_must_be_long() -> None:
    assert owner_secret(Settings(owner_secret="c" * 32)) == b"c" * 32
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings(owner_secret="short")


def test_ids_depend_on_the_secret_and_differ_from_the_unkeyed_ones() -> None:
    a, b = owner_id(b"a" * 32, "sk-key"), owner_id(b"b" * 32, "sk-key")
    assert a != b and a != legacy_owner_id("sk-key")
    assert a == owner_id(b"a" * 32, "sk-key") and len(a) == len(legacy_owner_id("sk-key"))
