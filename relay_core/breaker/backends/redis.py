"""Breakers kept in Redis: allow, record and state are one Lua script each.

Scripts run with EVALSHA and are reloaded by redis-py when Redis answers NOSCRIPT. Disabled
keys are a plain hash per provider (single commands are atomic already). Works with clients
made with or without ``decode_responses``.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files

from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from relay_core.breaker.policy import (
    WINDOW_SLOTS,
    BreakerPolicy,
    BreakerState,
    BreakerStatus,
    DisabledKey,
    Permit,
)


def _script(name: str) -> str:
    """A script's text: the shared prelude, then the script itself."""
    here = files(__package__)
    return here.joinpath("prelude.lua").read_text() + here.joinpath(name).read_text()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _status(key: str, fields: list[str]) -> BreakerStatus:
    state, retry, fails, calls, failures, cooldown = fields
    return BreakerStatus(
        key=key,
        state=BreakerState(state),
        retry_in_s=float(retry),
        consecutive_failures=int(fails),
        calls=int(calls),
        failures=int(failures),
        cooldown_s=float(cooldown),
    )


class RedisBackend:
    def __init__(self, client: Redis) -> None:
        self._client = client
        self._allow = client.register_script(_script("allow.lua"))
        self._record = client.register_script(_script("record.lua"))
        self._state = client.register_script(_script("state.lua"))

    async def allow(self, keys: Sequence[str], policy: BreakerPolicy, now: float) -> Permit:
        reply = await self._allow(list(keys), [repr(now), repr(policy.probe_ttl_s), policy.ttl_s])
        allowed, state, retry, *probes = (_text(v) for v in reply)
        if allowed != "1":
            return Permit(False, BreakerState(state), float(retry), tuple(keys))
        probe_keys = tuple(k for k, p in zip(keys, probes, strict=True) if p == "1")
        return Permit(True, BreakerState(state), 0.0, tuple(keys), probe_keys)

    async def record(
        self,
        keys: Sequence[str],
        probes: Sequence[bool],
        success: bool,
        policy: BreakerPolicy,
        now: float,
        *,
        count: int = 1,
    ) -> None:
        args: list[str | int] = [repr(now), int(success), policy.failures, repr(policy.ratio)]
        args += [repr(policy.window_s), policy.min_calls, repr(policy.cooldown_s)]
        args += [repr(policy.cooldown_max_s), policy.ttl_s, WINDOW_SLOTS, count]
        args += [int(p) for p in probes]
        await self._record(list(keys), args)

    async def state(
        self, keys: Sequence[str], policy: BreakerPolicy, now: float
    ) -> list[BreakerStatus]:
        args: list[str | int] = [repr(now), repr(policy.window_s), WINDOW_SLOTS]
        args.append(repr(policy.cooldown_s))
        reply = [_text(v) for v in await self._state(list(keys), args)]
        return [_status(key, reply[6 * i : 6 * i + 6]) for i, key in enumerate(keys)]

    async def disable(self, key: str, disabled: DisabledKey) -> None:
        mapping: dict[FieldT, EncodableT] = {
            "fingerprint": disabled.fingerprint,
            "reason": disabled.reason,
            "since": repr(disabled.since),
        }
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping=mapping)
            await pipe.execute()

    async def disabled(self, key: str) -> DisabledKey | None:
        found = {_text(k): _text(v) for k, v in (await self._client.hgetall(key)).items()}
        if "fingerprint" not in found:
            return None
        return DisabledKey(found["fingerprint"], found.get("reason", ""), float(found["since"]))

    async def enable(self, key: str) -> None:
        await self._client.delete(key)
