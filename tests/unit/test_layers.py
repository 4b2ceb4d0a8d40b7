"""Dependencies point inward: relay_core imports neither relay_api nor relay_workers; the
provider simulator (relay_sim) is an upstream, imported by no API, worker or core module."""

from __future__ import annotations

import ast
from pathlib import Path

import relay_core

FORBIDDEN = ("relay_api", "relay_workers", "relay_cli", "relay_sim")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_relay_core_imports_no_outer_layer() -> None:
    root = Path(relay_core.__file__).parent
    files = sorted(root.rglob("*.py"))
    assert len(files) > 20
    offenders = {
        str(f.relative_to(root)): sorted(
            m for m in imported_modules(f) if m.split(".")[0] in FORBIDDEN
        )
        for f in files
    }
    assert {f: m for f, m in offenders.items() if m} == {}


def test_no_api_or_worker_module_imports_the_simulator() -> None:
    import relay_api
    import relay_workers

    offenders = {
        str(f): sorted(m for m in imported_modules(f) if m.split(".")[0] == "relay_sim")
        for package in (relay_api, relay_workers)
        for f in sorted(Path(str(package.__file__)).parent.rglob("*.py"))
    }
    assert {f: m for f, m in offenders.items() if m} == {}


def test_the_check_would_catch_an_offender(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from relay_api.app import create_app\nimport relay_workers.tasks\n")
    assert {m.split(".")[0] for m in imported_modules(bad)} == {"relay_api", "relay_workers"}
