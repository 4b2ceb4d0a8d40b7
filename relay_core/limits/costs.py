"""Token costs learned from real usage, per provider/model, shared by every worker.

Before a call, Relay can only estimate what it will cost against a TPM or TPD limit: its own
count of the prompt, plus the output the request may produce (its ``max_tokens``). Real usage
says how far off both are, so each answered call teaches three figures, kept as moving
averages per (provider, model):

``prompt_ratio``
    the prompt tokens the upstream counted / Relay's own count (a denser tokenizer counts
    more);
``output_ratio``
    the completion tokens the answer had / the output the request allowed (``max_tokens``, or
    Relay's default output estimate, times ``n``): answers often stop far short of their cap;
``line_tokens``
    the tokens one call is charged as the provider counts them: the prompt plus the whole
    cap for a provider that reserves ``max_tokens`` at admission (``tpm_counting: reserve``),
    the prompt plus the real completion for one that counts usage. The batch feeder divides a
    TPM budget by it to plan how many lines a second a target takes.

How a figure is used depends on how the provider counts (``ProviderConfig.tpm_counting``):
a provider that reserves ``max_tokens`` charges it whatever the answer, so Relay reserves it
too (a smaller reservation only draws 429s); one that counts usage is reserved the *learned*
output, and every call's real usage settles the difference when its answer arrives
(``Limiter.release``), so the buckets' long-run rate is exact.

Each worker folds its own samples in at once and, at most every :data:`SYNC_S`, merges them
into Redis (``{prefix}:{provider}/{model}:cost``, a hash; one script per merge, forgotten a
week after the last one) and reads what the other workers learned.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

ALPHA = 0.2  # weight of one sample in the moving averages
SYNC_S = 1.0  # how often a worker merges its samples into Redis and reads the others'
MIN_PROMPT = 16  # prompts this short say little about a tokenizer (templates dominate)
PROMPT_RATIO = (0.5, 4.0)
OUTPUT_RATIO = (0.0, 4.0)
KEEP_S = 7 * 86_400
FIELDS = ("prompt_ratio", "output_ratio", "line_tokens")


@dataclass(frozen=True, slots=True)
class TokenCost:
    """What one target's calls cost, as learned (the defaults: nothing learned yet)."""

    prompt_ratio: float = 1.0
    output_ratio: float = 1.0
    line_tokens: float | None = None
    samples: int = 0

    def prompt(self, counted: int) -> int:
        """Relay's count of a prompt, as this upstream counts it."""
        return math.ceil(counted * self.prompt_ratio)

    def output(self, cap: int) -> int:
        """The output an answer allowed ``cap`` tokens is expected to produce (at least 1)."""
        if self.samples == 0:
            return cap
        return max(1, math.ceil(cap * self.output_ratio))


NOTHING_LEARNED = TokenCost()


@dataclass(frozen=True, slots=True)
class CostSample:
    """One answered call: Relay's prompt count and output cap, the upstream's usage, and what
    the provider charged it."""

    prompt_counted: int
    output_cap: int
    prompt_tokens: int
    completion_tokens: int
    reserves: bool  # the provider charges the whole cap (tpm_counting: reserve)

    def values(self) -> dict[str, float]:
        """The sample of each figure this call gives (a figure it says nothing about is left
        out: a short prompt, an answer with no cap to compare against)."""
        out: dict[str, float] = {}
        if self.prompt_counted >= MIN_PROMPT and self.prompt_tokens > 0:
            out["prompt_ratio"] = _clamp(self.prompt_tokens / self.prompt_counted, PROMPT_RATIO)
        if self.output_cap > 0:
            out["output_ratio"] = _clamp(self.completion_tokens / self.output_cap, OUTPUT_RATIO)
        charged = self.output_cap if self.reserves else self.completion_tokens
        out["line_tokens"] = float(self.prompt_tokens + charged)
        return out


def _clamp(x: float, bounds: tuple[float, float]) -> float:
    return min(bounds[1], max(bounds[0], x))


def weight(count: int) -> float:
    """The weight of ``count`` samples folded in at once (as if one after another)."""
    return 1.0 - (1.0 - ALPHA) ** count


def _blend(old: float | None, mean: float | None, w: float, fresh: bool) -> float | None:
    if mean is None:
        return old
    return mean if fresh or old is None else old + w * (mean - old)


def fold(cost: TokenCost, means: dict[str, float], count: int) -> TokenCost:
    """``cost`` after ``count`` samples whose figures average ``means`` (the first samples
    set the figures; a figure never sampled blends from its default)."""
    w, fresh = weight(count), cost.samples == 0
    prompt = _blend(cost.prompt_ratio, means.get("prompt_ratio"), w, fresh)
    output = _blend(cost.output_ratio, means.get("output_ratio"), w, fresh)
    return TokenCost(
        prompt_ratio=1.0 if prompt is None else prompt,
        output_ratio=1.0 if output is None else output,
        line_tokens=_blend(cost.line_tokens, means.get("line_tokens"), w, fresh),
        samples=cost.samples + count,
    )


@dataclass
class _Pending:
    sums: dict[str, float]
    counts: dict[str, int]

    def add(self, values: dict[str, float]) -> None:
        for name, x in values.items():
            self.sums[name] = self.sums.get(name, 0.0) + x
            self.counts[name] = self.counts.get(name, 0) + 1

    def means(self) -> tuple[dict[str, float], int]:
        count = max(self.counts.values(), default=0)
        return {n: self.sums[n] / self.counts[n] for n in self.sums}, count


class CostStore(Protocol):
    async def merge(self, key: str, means: dict[str, float], count: int) -> TokenCost:
        """Fold ``count`` samples averaging ``means`` into the kept figures; the result."""
        ...

    async def read(self, keys: Sequence[str]) -> list[TokenCost]: ...


class MemoryCosts:
    def __init__(self) -> None:
        self._kept: dict[str, TokenCost] = {}

    async def merge(self, key: str, means: dict[str, float], count: int) -> TokenCost:
        self._kept[key] = fold(self._kept.get(key, NOTHING_LEARNED), means, count)
        return self._kept[key]

    async def read(self, keys: Sequence[str]) -> list[TokenCost]:
        return [self._kept.get(k, NOTHING_LEARNED) for k in keys]


# KEYS[1] the hash; ARGV: weight, count, ttl, then (name, mean, default or "") triplets.
# Returns the hash's figures (the same folding as ``fold``).
_MERGE = """
local w, count = tonumber(ARGV[1]), tonumber(ARGV[2])
local fresh = tonumber(redis.call('HGET', KEYS[1], 'samples') or '0') == 0
for i = 4, #ARGV, 3 do
  local mean = tonumber(ARGV[i + 1])
  local old = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or ARGV[i + 2])
  local value = mean
  if not fresh and old then value = old + w * (mean - old) end
  redis.call('HSET', KEYS[1], ARGV[i], string.format('%.17g', value))
end
redis.call('HINCRBY', KEYS[1], 'samples', count)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return redis.call('HMGET', KEYS[1], 'prompt_ratio', 'output_ratio', 'line_tokens', 'samples')
"""


def _decode(row: Sequence[bytes | str | None]) -> TokenCost:
    prompt, output, line, samples = row
    if samples is None:
        return NOTHING_LEARNED
    return TokenCost(
        prompt_ratio=1.0 if prompt is None else float(prompt),
        output_ratio=1.0 if output is None else float(output),
        line_tokens=None if line is None else float(line),
        samples=int(samples),
    )


class RedisCosts:
    def __init__(self, client: Redis) -> None:
        self._client = client
        self._merge = client.register_script(_MERGE)

    async def merge(self, key: str, means: dict[str, float], count: int) -> TokenCost:
        args: list[str | int] = [repr(weight(count)), count, KEEP_S]
        for name, mean in means.items():
            args += [name, repr(mean), "1.0" if name.endswith("_ratio") else ""]
        return _decode(await self._merge([key], args))

    async def read(self, keys: Sequence[str]) -> list[TokenCost]:
        async with self._client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hmget(key, [*FIELDS, "samples"])
            rows = await pipe.execute()
        return [_decode(row) for row in rows]


def cost_key(prefix: str, provider: str, model: str) -> str:
    return f"{prefix}:{provider}/{model}:cost"


class LearnedCosts:
    """A process's view of every target's learned cost: its own samples count at once, the
    other workers' once they are merged (:meth:`sync`, at most every ``SYNC_S``).
    :meth:`get` answers synchronously (estimates are made without I/O)."""

    def __init__(self, store: CostStore, prefix: str) -> None:
        self.store = store
        self.prefix = prefix
        self._known: dict[tuple[str, str], TokenCost] = {}
        self._pending: dict[tuple[str, str], _Pending] = {}
        self._synced_at = -SYNC_S

    def get(self, provider: str, model: str) -> TokenCost:
        return self._known.get((provider, model), NOTHING_LEARNED)

    def observe(self, provider: str, model: str, sample: CostSample) -> None:
        values = sample.values()
        key = (provider, model)
        self._known[key] = fold(self.get(provider, model), values, 1)
        self._pending.setdefault(key, _Pending({}, {})).add(values)

    async def sync(self, targets: Sequence[tuple[str, str]], now: float) -> None:
        """Merge this process's samples into the store and read every target of ``targets``
        (at most every ``SYNC_S``)."""
        if now - self._synced_at < SYNC_S:
            return
        self._synced_at = now
        pending, self._pending = self._pending, {}
        for key, acc in pending.items():
            means, count = acc.means()
            self._known[key] = await self.store.merge(cost_key(self.prefix, *key), means, count)
        rest = [t for t in dict.fromkeys(targets) if t not in pending]
        if rest:
            found = await self.store.read([cost_key(self.prefix, *t) for t in rest])
            self._known.update(zip(rest, found, strict=True))
