"""A :class:`~relay_core.policy.ruling.Ruling` applied: to the candidates (who may serve,
who goes first) and to the request (its caps). Pure functions, used by the API for chat
requests and by the batch feeder for batch lines."""

from __future__ import annotations

from collections.abc import Sequence

from relay_core.catalogue.terms import Tier
from relay_core.errors import PolicyRefused
from relay_core.policy.models import TargetSet
from relay_core.policy.ruling import Ruling
from relay_core.profile.models import Profile
from relay_core.routing.targets import Target
from relay_core.schemas.chat import ChatCompletionRequest
from relay_core.settings import Mode


def _holds(chosen: TargetSet, t: Target) -> bool:
    return chosen.holds(t.provider.name, t.key, t.provider.tier)


def gate(ruling: Ruling, t: Target, mode: Mode) -> str | None:
    """Why the ruling keeps ``t`` out (None: it may serve)."""
    if mode is Mode.free and t.provider.tier is Tier.paid:
        return "paid tier, mode free"
    if not ruling.exclude and not ruling.require:
        return None
    name, key, tier = t.provider.name, t.key, t.provider.tier
    if any(s.holds(name, key, tier) for s in ruling.exclude):
        return "excluded by policy"
    if not all(s.holds(name, key, tier) for s in ruling.require):
        return "not required by policy"
    return None


def admit(ruling: Ruling, targets: Sequence[Target], mode: Mode) -> list[Target]:
    """The targets the ruling lets serve in ``mode``; a 400 naming the firing policies when
    it leaves none."""
    kept = [t for t in targets if gate(ruling, t, mode) is None]
    if not kept and targets:
        raise PolicyRefused(
            f"The routing policies {', '.join(ruling.fired)} leave no provider for this "
            "request (they exclude or do not require every candidate).",
            param="model",
        )
    return kept


def preferred_first(ruling: Ruling, ranked: Sequence[Target]) -> list[Target]:
    """``ranked`` with the preferred targets first (the first firing policy's set, then the
    next's), the order otherwise kept."""
    if not ruling.prefer:
        return list(ranked)
    sets = ruling.prefer

    def place(t: Target) -> int:
        return next((i for i, s in enumerate(sets) if _holds(s, t)), len(sets))

    return sorted(ranked, key=place)


def preferred_only(ruling: Ruling, targets: Sequence[Target]) -> list[Target]:
    """The targets of the first preferred set that holds any of ``targets`` (all of them
    when no set does): where a batch line goes first."""
    for chosen in ruling.prefer:
        held = [t for t in targets if _holds(chosen, t)]
        if held:
            return held
    return list(targets)


def capped(
    ruling: Ruling, request: ChatCompletionRequest, profile: Profile
) -> tuple[ChatCompletionRequest, Profile]:
    """The request with ``temperature`` and the output cap lowered to the ruling's caps (an
    unset one is set: the provider's default may be higher), and its profile to match."""
    update: dict[str, float | int] = {}
    if ruling.temperature is not None and (
        request.temperature is None or request.temperature > ruling.temperature
    ):
        update["temperature"] = ruling.temperature
    cap = ruling.max_tokens
    asked = request.output_limit()
    if cap is not None and (asked is None or asked > cap):
        # Lower whichever spelling the caller used (max_completion_tokens wins when both).
        field = "max_completion_tokens" if request.max_completion_tokens else "max_tokens"
        update[field] = cap
    if not update:
        return request, profile
    request = request.model_copy(update=update)
    limit = request.output_limit()
    profile = profile.model_copy(
        update={
            "capped": limit is not None,
            "expected_output_tokens": limit or profile.expected_output_tokens,
            "deterministic": request.temperature == 0 or request.seed is not None,
        }
    )
    return request, profile
