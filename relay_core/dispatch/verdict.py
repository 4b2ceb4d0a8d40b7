"""What an answer that came back is worth to its request (docs/answers.md, docs/routing.md).

A 200 is not yet a success: the answer is checked against the JSON its ``response_format``
asks for (repaired on the same candidate, then failed over), and judged usable or not
(empty, cut short, prose where JSON was asked, tool arguments that do not parse). These are
the executor's pure decisions about one answer; the executor does the bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass

from relay_core.answers.repair import CheckAction, check_entry, next_repair, repairs_of
from relay_core.answers.validate import ValidationResult, validate
from relay_core.context.count import count_text
from relay_core.dispatch.call import Call
from relay_core.dispatch.envelope import Envelope
from relay_core.dispatch.outcome import Forward
from relay_core.dispatch.state import LiveTarget
from relay_core.errors import UpstreamInvalidAnswer, UpstreamUnusableAnswer
from relay_core.profile import Profile, profile_request
from relay_core.profile.judge import unusable_answer
from relay_core.schemas.chat import ChatCompletion, Usage


@dataclass(frozen=True, slots=True)
class Verdict:
    check: ValidationResult  # against the response_format's JSON (checked or not)
    unusable: UpstreamUnusableAnswer | None  # what the answer counts as, if unusable


def profile_of(env: Envelope) -> Profile:
    """The request's profile: the one it carries, else computed now (a batch line's)."""
    if env.profile is not None:
        return env.profile
    return profile_request(env.chat, message_tokens=env.message_tokens)


def judge_answer(env: Envelope, call: Call, body: ChatCompletion) -> Verdict:
    """``body`` (normalized) checked against its format and judged for its request; an answer
    that is JSON but not the schema's counts as unusable too (learned as a flaw)."""
    t = call.target
    check = validate(body, call.request.response_format)
    unusable = unusable_answer(profile_of(env), body, t.name, t.model.id)
    if check.failed and unusable is None:
        unusable = UpstreamInvalidAnswer(
            f"{t.name} answered {t.model.id} against the schema: {check.error}",
            provider=t.name,
            model=t.model.id,
        )
    return Verdict(check, unusable)


def with_check(
    env: Envelope, t: LiveTarget, check: ValidationResult, action: CheckAction
) -> Envelope:
    """``env`` with this check in its route audit."""
    entry = check_entry(t.name, t.model.id, env.attempts, check, action)
    return env.model_copy(update={"checks": [*env.checks, entry]})


def after_invalid(
    env: Envelope, call: Call, body: ChatCompletion, check: ValidationResult, max_repairs: int
) -> Forward | tuple[Envelope, UpstreamInvalidAnswer]:
    """An answer that is not the JSON asked for: the same candidate asked again with the
    validator's words (a Forward), or, its ``max_repairs`` spent, the envelope and the error
    to fail over with."""
    t, key = call.target, env.current.key
    done = repairs_of(env.repair, key)
    if done < max_repairs:
        env = with_check(env, t, check, CheckAction.repair)
        repair = next_repair(env.repair, key, body, check, env.chat)
        return Forward(env.model_copy(update={"repair": repair}))
    env = with_check(env, t, check, CheckAction.failover)
    exc = UpstreamInvalidAnswer(
        f"{t.name} answered {t.model.id} with no valid JSON after {done} repair(s): {check.error}",
        provider=t.name,
        model=t.model.id,
    )
    return env.model_copy(update={"repair": None}), exc


def estimated_usage(body: ChatCompletion, call: Call) -> Usage:
    """Relay's estimate, marked ``estimated: true``, for an answer that came without usage:
    the prompt's carried estimate and the answer's text, never above ``max_tokens`` x ``n``."""
    texts = [c.message.content or "" for c in body.choices]
    for c in body.choices:
        texts.extend(t.function.name + t.function.arguments for t in c.message.tool_calls or ())
    completion = sum(count_text(t) for t in texts)
    cap = call.request.output_limit()
    if cap is not None:
        completion = min(completion, cap * (call.request.n or 1))
    return Usage.model_validate(
        {
            "prompt_tokens": call.prompt,
            "completion_tokens": completion,
            "total_tokens": call.prompt + completion,
            "estimated": True,
        }
    )
