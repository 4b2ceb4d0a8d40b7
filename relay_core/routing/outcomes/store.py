"""The outcomes in Redis: one hash per task family, fields ``{target}|s``, ``|f`` (usable and
unusable answers), ``|h{i}`` (answers per latency bucket) and ``|t`` (last written).

Every worker adds its counts with one Lua script per target (atomic: two workers never lose
each other's), which also scales the target's counts down to :data:`WINDOW` observations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from redis.asyncio import Redis

from relay_core.routing.outcomes.stats import LATENCY_EDGES, WINDOW, Stats

# KEYS[1]: the family's hash. ARGV: target, window, now, then (field, delta) pairs.
_RECORD = """
local key, target, window = KEYS[1], ARGV[1], tonumber(ARGV[2])
for i = 4, #ARGV, 2 do
  redis.call('HINCRBYFLOAT', key, target .. '|' .. ARGV[i], ARGV[i + 1])
end
redis.call('HSET', key, target .. '|t', ARGV[3])
local s = tonumber(redis.call('HGET', key, target .. '|s') or '0')
local f = tonumber(redis.call('HGET', key, target .. '|f') or '0')
if s + f > window then
  local k = window / (s + f)
  local fields = {'s', 'f'}
  for i = 0, BUCKETS - 1 do fields[#fields + 1] = 'h' .. i end
  for _, name in ipairs(fields) do
    local v = redis.call('HGET', key, target .. '|' .. name)
    if v then redis.call('HSET', key, target .. '|' .. name, tonumber(v) * k) end
  end
end
return 1
""".replace("BUCKETS", str(len(LATENCY_EDGES)))

Delta = Mapping[str, int]  # field ("s", "f", "h3") -> count to add


class OutcomeStore:
    def __init__(self, redis: Redis, prefix: str, window: float = WINDOW) -> None:
        self.redis = redis
        self.prefix = prefix
        self.window = window
        self._record = redis.register_script(_RECORD)

    def key(self, family: str) -> str:
        return f"{self.prefix}:outcomes:{family}"

    async def record(self, deltas: Mapping[tuple[str, str], Delta], now: float) -> None:
        """Add each (family, target)'s counts: one round trip for them all."""
        if not deltas:
            return
        pipe = self.redis.pipeline(transaction=False)
        for (family, target), delta in deltas.items():
            args: list[str | float] = [target, self.window, now]
            for name, n in delta.items():
                args += [name, n]
            await self._record(keys=[self.key(family)], args=args, client=pipe)
        await pipe.execute()

    async def read(self, family: str) -> dict[str, Stats]:
        """Every target's stats for ``family``, as written (not faded)."""
        raw = await self.redis.hgetall(self.key(family))
        return parse(raw)

    async def forget(self, families: Sequence[str]) -> None:
        await self.redis.delete(*(self.key(f) for f in families))


def parse(raw: Mapping[bytes | str, bytes | str]) -> dict[str, Stats]:
    fields: dict[str, dict[str, float]] = {}
    for name, value in raw.items():
        text = name.decode() if isinstance(name, bytes) else name
        target, _, field = text.rpartition("|")
        fields.setdefault(target, {})[field] = float(value)
    out: dict[str, Stats] = {}
    for target, f in fields.items():
        latency = tuple(f.get(f"h{i}", 0.0) for i in range(len(LATENCY_EDGES)))
        out[target] = Stats(f.get("s", 0.0), f.get("f", 0.0), latency, f.get("t", 0.0))
    return out
