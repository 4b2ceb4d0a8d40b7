"""Which policies fire for one request, and what they decide together: a :class:`Ruling`.

Every policy whose ``match`` holds fires, in catalogue order. Their actions combine:

* ``exclude``: every set excluded is left out; ``require``: only targets in *every* required
  set stay; ``prefer``: targets in the first firing policy's set go first, then the second's;
* ``cap``: the lowest ``temperature`` and ``max_tokens`` of the firing policies;
* ``mode``, ``hedge``, ``cache``: the first firing policy that sets one decides it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from relay_core.policy.models import Policy, PolicyMatch, TargetSet
from relay_core.profile.models import Profile
from relay_core.settings import Mode


@dataclass(frozen=True, slots=True)
class Facts:
    """What a policy may match a request on."""

    model: str  # the requested ``model``, as sent
    profile: Profile
    key: str | None  # the caller's owner id (never the gateway key itself)
    headers: Mapping[str, str]  # lower-case names; empty for a batch line


@dataclass(frozen=True, slots=True)
class Ruling:
    """What the firing policies decided. The empty ruling changes nothing.

    ``hedge`` and ``cache`` are flags for the code that hedges requests and the exact-answer
    cache: ``True`` when a firing policy turned the feature on for this request."""

    fired: tuple[str, ...] = ()
    prefer: tuple[TargetSet, ...] = ()
    exclude: tuple[TargetSet, ...] = ()
    require: tuple[TargetSet, ...] = ()
    temperature: float | None = None
    max_tokens: int | None = None
    mode: Mode | None = None
    hedge: bool = False
    cache: bool = False


NOTHING = Ruling()


def _needs_hold(match: PolicyMatch, profile: Profile) -> bool:
    have = profile.needs
    return all(getattr(have, need) for need in match.needs or ())


def _headers_hold(match: PolicyMatch, headers: Mapping[str, str]) -> bool:
    for name, values in (match.header or {}).items():
        value = headers.get(name)
        if value is None or value.strip() not in values:
            return False
    return True


def matches(match: PolicyMatch, facts: Facts) -> bool:
    p = facts.profile
    checks = (
        match.model is None or any(fnmatchcase(facts.model, g) for g in match.model),
        match.family is None or p.family in match.family,
        match.contract is None or p.contract in match.contract,
        match.deterministic is None or p.deterministic is match.deterministic,
        match.priority is None or p.priority in match.priority,
        match.key is None or (facts.key is not None and facts.key in match.key),
        _needs_hold(match, p),
        _headers_hold(match, facts.headers),
    )
    return all(checks)


def _lowest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def decide(policies: Sequence[Policy], facts: Facts) -> Ruling:
    """The ruling of ``policies`` for a request (:data:`NOTHING` when none fires)."""
    fired = [p for p in policies if matches(p.match, facts)]
    if not fired:
        return NOTHING
    temperature: float | None = None
    max_tokens: int | None = None
    for p in fired:
        if p.cap is not None:
            temperature = _lowest(temperature, p.cap.temperature)
            caps = _lowest(max_tokens, p.cap.max_tokens)
            max_tokens = None if caps is None else int(caps)
    return Ruling(
        fired=tuple(p.name for p in fired),
        prefer=tuple(p.prefer for p in fired if p.prefer is not None),
        exclude=tuple(p.exclude for p in fired if p.exclude is not None),
        require=tuple(p.require for p in fired if p.require is not None),
        temperature=temperature,
        max_tokens=max_tokens,
        mode=next((p.mode for p in fired if p.mode is not None), None),
        hedge=next((p.hedge for p in fired if p.hedge is not None), False),
        cache=next((p.cache for p in fired if p.cache is not None), False),
    )
