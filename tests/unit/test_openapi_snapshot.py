"""The OpenAPI schema is snapshotted, so API drift shows in review.

When a change to the API is intended, refresh the snapshot and commit it with the change::

    RELAY_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/unit/test_openapi_snapshot.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from relay_api.app import create_app
from relay_core.settings import Settings

SNAPSHOT = Path(__file__).parent / "openapi.snapshot.json"


def current_schema() -> str:
    app = create_app(Settings())
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"


def test_the_openapi_schema_matches_its_snapshot() -> None:
    schema = current_schema()
    if os.environ.get("RELAY_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(schema)
    assert SNAPSHOT.exists(), "no snapshot: run with RELAY_UPDATE_SNAPSHOTS=1 to write it"
    assert schema == SNAPSHOT.read_text(), (
        "the OpenAPI schema changed: if intended, refresh the snapshot "
        "(RELAY_UPDATE_SNAPSHOTS=1, see this module's docstring) and commit it"
    )
