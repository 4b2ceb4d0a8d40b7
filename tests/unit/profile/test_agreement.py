"""The profile against the labelled set (tests/fixtures/profile/labelled.jsonl): agreement per
axis, printed as a table (``pytest -s``) and held above a floor. The figures are in
docs/routing.md."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from relay_core.profile import Profile, profile_request
from relay_core.schemas.chat import ChatCompletionRequest

LABELLED = Path(__file__).parents[2] / "fixtures" / "profile" / "labelled.jsonl"
PAD = "Background section. "
FLOOR = 0.9  # the target for family, needs and output contract


def rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in LABELLED.read_text().splitlines() if line.strip()]


def request_of(row: dict[str, Any]) -> ChatCompletionRequest:
    body = json.loads(json.dumps(row["request"]))
    if row.get("pad"):
        last = body["messages"][-1]
        last["content"] = f"{last['content']}\n\n{PAD * row['pad']}"
    return ChatCompletionRequest.model_validate(body)


def axes(profile: Profile) -> dict[str, object]:
    return {
        "family": profile.family.value,
        "contract": profile.contract.value,
        "needs": sorted(profile.needs.names()),
    }


def agreement() -> tuple[dict[str, float], Counter[tuple[str, str]], int]:
    data = rows()
    hits: Counter[str] = Counter()
    confused: Counter[tuple[str, str]] = Counter()
    for row in data:
        got = axes(profile_request(request_of(row)))
        want = {"family": row["family"], "contract": row["contract"], "needs": sorted(row["needs"])}
        for axis, value in want.items():
            hits[axis] += got[axis] == value
        if got["family"] != row["family"]:
            confused[(row["family"], str(got["family"]))] += 1
    return (
        {axis: hits[axis] / len(data) for axis in ("family", "contract", "needs")},
        confused,
        len(data),
    )


def test_the_labelled_set_is_large_enough_and_covers_every_family() -> None:
    data = rows()
    assert len(data) >= 200
    counts = Counter(r["family"] for r in data)
    assert set(counts) == {
        "chat",
        "coding",
        "extraction",
        "reasoning",
        "summarisation",
        "translation",
    }
    assert min(counts.values()) >= 30


@pytest.mark.parametrize("axis", ["family", "contract", "needs"])
def test_agreement_with_the_labelled_set(axis: str) -> None:
    scores, confused, n = agreement()
    print(f"\nprofile agreement over {n} labelled prompts")
    for name, share in scores.items():
        print(f"  {name:<9} {share:6.1%}")
    for (want, got), k in confused.most_common(8):
        print(f"  family {want} read as {got}: {k}")
    assert scores[axis] >= FLOOR, (axis, scores[axis])
