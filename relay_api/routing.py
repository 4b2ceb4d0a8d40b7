"""The API's routing step for a chat request: candidates, profile, policies, ranking.

    resolve -> fit -> profile -> policies (admit, caps) -> live state + learned -> rank
            -> preferred first -> the session's pinned target first

Everything the audit of the request needs (``GET /v1/requests/{id}/route``) is kept in the
:class:`Routing` as it was decided; the audit is written from it after the answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from relay_core.affinity import prefer_pinned
from relay_core.context.prepare import fit_candidates
from relay_core.policy.apply import admit, capped, preferred_first
from relay_core.policy.ruling import NOTHING, Facts, Ruling, decide, matches
from relay_core.profile import Priority, Profile, profile_request
from relay_core.routing.explain import route_note
from relay_core.routing.ranking import LiveState, Ranked
from relay_core.routing.targets import Selection, Target, pinned_target, resolve_targets
from relay_core.schemas.chat import ChatCompletionRequest
from relay_core.settings import Mode

if TYPE_CHECKING:  # the state holds the audit log, which reads a Routing
    from relay_api.state import ApiState


@dataclass(frozen=True, slots=True)
class Routing:
    request: ChatCompletionRequest  # as it will be sent: the policies' caps applied
    ranked: list[Target]
    costs: list[int]  # each message's token estimate (counted once, for the envelope)
    profile: Profile
    note: str  # the x-relay-route header
    mode: Mode  # the tier mode the request was routed in (a policy's, or RELAY_MODE)
    ruling: Ruling = NOTHING
    considered: list[Target] = field(default_factory=list)  # before the policies
    live: Mapping[str, LiveState] = field(default_factory=dict)
    route: Ranked | None = None


@dataclass(frozen=True, slots=True)
class Ask:
    """Who asks and how, beside the body: what the policies and the ranking read."""

    owner: str
    headers: Mapping[str, str]
    fallback: str | None = None
    pinned: str | None = None  # the session's target, ``provider/model``
    priority: Priority = Priority.normal


def cache_said(state: ApiState, body: ChatCompletionRequest, ask: Ask) -> bool | None:
    """What the routing policies' ``cache`` says for ``body``, before it is routed (the cache
    is read first): decided on a profile sized from the text alone; None when no policy
    sets ``cache`` (then nothing is computed)."""
    policies = [p for p in state.catalogue.policies if p.cache is not None]
    if not policies:
        return None
    profile = profile_request(body, priority=ask.priority)
    fired = [
        p for p in policies if matches(p.match, Facts(body.model, profile, ask.owner, ask.headers))
    ]
    return fired[0].cache if fired else None


async def rank_candidates(state: ApiState, body: ChatCompletionRequest, ask: Ask) -> Routing:
    """The candidates for ``body``, best first: only those whose window can take it and the
    policies let serve, the preferred ones first, and the session's pinned target first
    when it can serve now; ranked on the request's profile and what each target's answers
    to its family were worth."""
    sel = Selection(
        model=body.model,
        model_type=body.model_type,
        model_scale=body.model_scale,
        model_name=body.model_name,
        fallback_any=(ask.fallback or "").strip().lower() == "any",
    )
    s = state.settings
    targets = resolve_targets(state.providers, sel, mode=s.mode, meta_model=s.meta_model)
    targets, costs = await fit_candidates(body, targets, lambda t: t.model, s)
    profile = profile_request(body, message_tokens=costs, priority=ask.priority)
    considered = targets
    ruling = NOTHING
    if state.catalogue.policies:
        facts = Facts(body.model, profile, ask.owner, ask.headers)
        ruling = decide(state.catalogue.policies, facts)
    mode = ruling.mode or s.mode
    if ruling.fired:
        targets = admit(ruling, targets, mode)
        body, profile = capped(ruling, body, profile)
    if len(targets) == 1:
        route = Ranked(targets)
        note = route_note(profile, route, fired=ruling.fired)
        return Routing(body, targets, costs, profile, note, mode, ruling, considered, {}, route)
    learned = await state.outcomes.stats(profile.family.value)
    explicit = pinned_target(state.providers, body.model)
    if explicit is not None and targets[0] == explicit:
        # ``provider/model`` with X-Relay-Fallback: any: the named target stays first (the
        # worker moves on when it cannot serve); only the fallbacks are ranked.
        live = await state.live.states(targets[1:])
        route = state.ranker.route(targets[1:], live, learned, profile, mode)
        ranked = [explicit, *preferred_first(ruling, route.targets)]
    else:
        live = await state.live.states(targets)
        route = state.ranker.route(targets, live, learned, profile, mode)
        ranked = prefer_pinned(preferred_first(ruling, route.targets), live, ask.pinned)
    state.live.sent(ranked[0])
    note = route_note(profile, route, ranked[0], fired=ruling.fired)
    return Routing(body, ranked, costs, profile, note, mode, ruling, considered, live, route)
