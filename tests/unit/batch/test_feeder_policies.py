"""The routing policies on batch lines: the feeder applies them as the API does for a chat
request (exclusions, preferences, caps, flags), with the batch's owner as the key."""

from __future__ import annotations

from typing import Any, cast

import orjson

from relay_core.batch.lines import LineRef
from relay_core.batch.models import BatchStatus
from relay_core.batch.run.feeder import Feeder, Plan
from relay_core.batch.store.record import BatchRecord
from relay_core.batch.store.store import BatchStore
from relay_core.dispatch.envelope import Envelope
from relay_core.policy.models import Policy
from relay_core.routing.targets import Target, all_targets
from relay_core.storage.base import ObjectStorage
from tests.unit.routing.support import catalogue

OWNER = "k0123456789abcde"


def record() -> BatchRecord:
    return BatchRecord(
        id="batch_1",
        status=BatchStatus.in_progress,
        owner=OWNER,
        endpoint="/v1/chat/completions",
        input_file_id="file-1",
        expires_at_exact=2e9,
        total=1,
        completed=0,
        failed=0,
        dispatched=0,
        upstream_s=0.0,
        answer_s={},
        in_progress_at=None,
        hedged=0,
        discarded=0,
        resent={},
        closing=False,
        default_model=None,
        end_reason=None,
        output_file_id=None,
        error_file_id=None,
        finalize_error=None,
        fields={},
    )


def llama() -> list[Target]:
    return [t for t in all_targets(catalogue()) if "llama" in (t.model.id, *t.model.aliases)]


def envelope(policies: list[dict[str, Any]], body: dict[str, Any] | None = None) -> Envelope:
    feeder = Feeder(
        cast(BatchStore, None),
        cast(ObjectStorage, None),
        60.0,
        lambda _sel: llama(),
        policies=[Policy.model_validate(p) for p in policies],
    )
    route = llama()
    plan = Plan([route], [route], {t.key: 1.0 for t in route}, float(len(route)))
    line = {
        "custom_id": "a",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": body or {"model": "llama", "messages": [{"role": "user", "content": "hi"}]},
    }
    ref = LineRef(offset=0, length=0, route=0, custom_id="a")
    return feeder._envelope(record(), plan, 0, ref, orjson.dumps(line), room=None)


def test_without_policies_a_line_may_go_to_any_target() -> None:
    env = envelope([])
    assert {c.provider for c in env.candidates} == {"groq", "ollama", "spare"}
    assert env.flags.hedge is False


def test_a_line_obeys_exclusions_preferences_caps_and_flags() -> None:
    env = envelope(
        [
            {"name": "no-groq", "match": {"key": OWNER}, "exclude": {"providers": ["groq"]}},
            {"name": "spare-first", "prefer": {"providers": ["spare"]}, "cache": True},
            {"name": "short", "match": {"model": "llama"}, "cap": {"max_tokens": 8}},
            {"name": "not-this-key", "match": {"key": "kfffffffffffffff"}, "mode": "paid"},
        ],
        {"model": "llama", "max_tokens": 900, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert [c.provider for c in env.candidates] == ["spare", "ollama"]
    assert env.chat.max_tokens == 8
    assert env.flags.cache is True
