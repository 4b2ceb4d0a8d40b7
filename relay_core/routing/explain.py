"""The route in a few words, for the ``x-relay-route`` response header (docs/routing.md)."""

from __future__ import annotations

from collections.abc import Sequence

from relay_core.profile.models import Profile
from relay_core.routing.ranking import Ranked
from relay_core.routing.targets import Target

MAX_CHARS = 240


def route_note(
    profile: Profile,
    ranked: Ranked,
    first: Target | None = None,
    *,
    fired: Sequence[str] = (),
) -> str:
    """``family/contract [needs]; first: score = terms; N candidates[, explored][, escalated]``
    then ``; policy a,b`` when routing policies fired (ASCII, at most :data:`MAX_CHARS`; the
    policies come before the score so a long note keeps them)."""
    head = f"{profile.family.value}/{profile.contract.value}"
    needs = profile.needs.names()
    if needs:
        head += f" [{','.join(needs)}]"
    first = first or (ranked.targets[0] if ranked.targets else None)
    parts = [head]
    if first is not None:
        terms = ranked.terms.get(first.key)
        parts.append(f"{first.key}: {terms.describe()}" if terms else first.key)
    if fired:
        parts.insert(1, f"policy {','.join(fired)}")
    flags = [f"{len(ranked.targets)} candidates"]
    if ranked.explored:
        flags.append("explored")
    if ranked.escalated:
        flags.append("paid escalated")
    parts.append(", ".join(flags))
    note = "; ".join(parts)
    return note.encode("ascii", "replace").decode()[:MAX_CHARS]
